/** Incremental graph construction with names, constants and shapes tracked as nodes are added. */
import type { AttrsInput, DType, Graph, Initializer, Model, Node, Shape, TensorValue, ValueInfo } from './ir';
import { DEFAULT_IR_VERSION, DEFAULT_OPSET, normaliseAttrs, tensor } from './ir';
import { SHAPE_RULES, type ShapeContext } from './shapes';

export interface OpOptions {
  /** Number of outputs (default 1). */
  outputs?: number;
  /** Exact output names instead of generated ones. */
  names?: string[];
  /** Explicit output types, for ops without a shape rule. */
  types?: { dtype: DType; shape: Shape }[];
}

export class GraphBuilder implements ShapeContext {
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly nodes: Node[] = [];
  readonly initializers: Initializer[] = [];
  private readonly types = new Map<string, { dtype: DType; shape: Shape }>();
  private readonly constants = new Map<string, TensorValue>();
  private readonly used = new Set<string>();
  private readonly renames = new Map<string, string>();
  private counter = 0;

  constructor(readonly name = 'graph') {}

  /** A fresh value name starting with `hint`. */
  fresh(hint: string): string {
    let name = hint;
    while (this.used.has(name)) name = `${hint}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`value name ${name} is already used in graph ${this.name}`);
    this.used.add(name);
    return name;
  }

  has(name: string): boolean {
    return this.types.has(name);
  }

  dtype(name: string): DType {
    const t = this.types.get(name);
    if (!t) throw new Error(`unknown value ${name} in graph ${this.name}`);
    return t.dtype;
  }

  shape(name: string): Shape {
    const t = this.types.get(name);
    if (!t) throw new Error(`unknown value ${name} in graph ${this.name}`);
    return t.shape;
  }

  /** A shape with every dim known; throws naming the value otherwise. */
  staticShape(name: string): number[] {
    const s = this.shape(name);
    if (s.some((d) => typeof d !== 'number')) throw new Error(`value ${name} has a symbolic shape [${s}]`);
    return s as number[];
  }

  constant(name: string): TensorValue | undefined {
    return this.constants.get(name);
  }

  input(name: string, dtype: DType, shape: Shape): string {
    this.claim(name);
    this.inputs.push({ name, dtype, shape });
    this.types.set(name, { dtype, shape });
    return name;
  }

  /** A named initializer (a weight, or a constant that should show up in the model's weights). */
  initializer(name: string, value: TensorValue): string {
    this.claim(name);
    this.initializers.push({ name, ...value });
    this.types.set(name, { dtype: value.dtype, shape: value.dims });
    this.constants.set(name, value);
    return name;
  }

  /** An anonymous constant tensor stored as an initializer. */
  const(value: TensorValue, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, ...value });
    this.types.set(name, { dtype: value.dtype, shape: value.dims });
    this.constants.set(name, value);
    return name;
  }

  scalar(v: number, dtype: DType = 'float32'): string {
    return this.const(tensor(dtype, [], [v]), 'scalar');
  }

  ints(values: number[], hint = 'ints'): string {
    return this.const(tensor('int64', [values.length], values), hint);
  }

  floats(values: number[], dims: number[] = [values.length], hint = 'floats'): string {
    return this.const(tensor('float32', dims, values), hint);
  }

  /** Adds a node; returns its output names. */
  opN(opType: string, inputs: string[], attrs?: AttrsInput, opts: OpOptions = {}): string[] {
    for (const i of inputs) if (i !== '' && !this.types.has(i)) throw new Error(`${opType}: unknown input ${i}`);
    const count = opts.names?.length ?? opts.outputs ?? 1;
    const outputs = opts.names ? opts.names.map((n) => this.claim(n)) : Array.from({ length: count }, () => this.fresh(opType.toLowerCase()));
    const node: Node = { name: this.fresh(`n_${opType}`), opType, inputs, outputs, attrs: normaliseAttrs(attrs) };
    let types = opts.types;
    if (!types) {
      const rule = SHAPE_RULES[opType];
      if (!rule) throw new Error(`no shape rule for op ${opType} (node ${node.name}); pass explicit types`);
      try {
        types = rule(node, this);
      } catch (e) {
        throw new Error(`${opType} node ${node.name}: ${(e as Error).message}`);
      }
    }
    outputs.forEach((o, i) => {
      const t = types![i];
      if (t) this.types.set(o, t);
    });
    if (opType === 'Constant') {
      const v = node.attrs.value;
      if (v?.type === 'tensor') this.constants.set(outputs[0], v.value);
    }
    this.nodes.push(node);
    return outputs;
  }

  /** Adds a single-output node; returns the output name. */
  op(opType: string, inputs: string[], attrs?: AttrsInput, opts: OpOptions = {}): string {
    return this.opN(opType, inputs, attrs, opts)[0];
  }

  /** Declares `value` as a graph output, renaming through Identity when a different name is wanted. */
  output(value: string, name = value): string {
    const out = name === value ? value : this.renameable(value) ? this.rename(value, name) : this.op('Identity', [value], {}, { names: [name] });
    this.outputs.push({ name: out, ...this.types.get(out)! });
    return out;
  }

  /** A node output that is not a graph input, initializer or output can take another name without a copy. */
  private renameable(value: string): boolean {
    return (
      !this.renames.has(value) &&
      !this.constants.has(value) &&
      !this.inputs.some((v) => v.name === value) &&
      !this.outputs.some((v) => v.name === value) &&
      this.nodes.some((n) => n.outputs.includes(value))
    );
  }

  /**
   * Gives a node output a second name; both stay usable while building, and build() keeps only
   * the new one, so a graph output needs no Identity copy.
   */
  private rename(value: string, name: string): string {
    this.claim(name);
    this.types.set(name, this.types.get(value)!);
    this.renames.set(value, name);
    return name;
  }

  build(): Graph {
    const renamed = (v: string) => this.renames.get(v) ?? v;
    return {
      name: this.name,
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      nodes: this.nodes.map((n) => ({ ...n, inputs: n.inputs.map(renamed), outputs: n.outputs.map(renamed) })),
      initializers: [...this.initializers],
    };
  }

  model(metadata: Record<string, string> = {}, producerVersion = '0.1.0'): Model {
    return {
      irVersion: DEFAULT_IR_VERSION,
      opset: DEFAULT_OPSET,
      producerName: 'trident',
      producerVersion,
      graph: this.build(),
      metadata,
    };
  }
}
