export * from './ir';
export * from './builder';
export * from './serialize';
export { broadcastShapes } from './shapes';
