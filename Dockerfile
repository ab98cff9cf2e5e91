# Production image: `trident serve` on the embedded model repository, REST :8000, gRPC :8001.
#   docker build -t trident . && docker run --rm -p 8000:8000 -p 8001:8001 trident
# onnxruntime-node and sharp ship glibc binaries, hence Debian slim rather than Alpine.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# The same install CI runs (.ci/run); .npmrc runs no install scripts, so the build is its own step.
COPY package.json package-lock.json .npmrc tsconfig.json ./
COPY src ./src
COPY web ./web
RUN npm ci --no-audit --no-fund && npm run build

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
# No install script is needed (.npmrc says why): onnxruntime-node's and sharp's CPU binaries
# come inside their packages.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && arch="$(node -p process.arch)" \
 && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 ! -name linux -exec rm -rf {} + \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 ! -name "$arch" -exec rm -rf {} + \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY proto ./proto
COPY models ./models
# Fashion-MNIST's test split: the fine-tune gate's FashionLoc reference canvases.
COPY data/fashion-mnist/t10k-images-idx3-ubyte.gz data/fashion-mnist/t10k-labels-idx1-ubyte.gz data/fashion-mnist/COPYRIGHT ./data/fashion-mnist/
USER node
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8000/v2/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Repository load/unload stay refused until keys are given (TRIDENT_API_KEYS=key1,key2).
CMD ["node", "--initial-old-space-size=256", "bin/trident.js", "serve", "--models", "models", "--http", "8000", "--grpc", "8001"]
