/** The model's tasks, in the one order every per-task vector (weights, losses) follows. */

export const TASKS = ['cls', 'det', 'box'] as const;

export type Task = (typeof TASKS)[number];

export const TASK_COUNT = TASKS.length;

type NumberPerItem<T extends readonly unknown[]> = { -readonly [K in keyof T]: number };

/** One number per task, in TASKS order: a tuple as long as TASKS. */
export type TaskVector = NumberPerItem<typeof TASKS>;

/** What each task is called where people read it (reports, the fine-tune API). */
export const TASK_NAMES = Object.freeze({ cls: 'classification', det: 'objectness', box: 'box' } as const satisfies Record<Task, string>);

/** Task values by name, as the fine-tune API and the progress events carry them. */
export type NamedTaskValues = { [T in Task as (typeof TASK_NAMES)[T]]: number };

/** A vector with `value` for every task. */
export function taskVector(value = 0): TaskVector {
  return TASKS.map(() => value) as TaskVector;
}

/** Applies `f` per task, keeping the vector type. */
export function mapTasks(f: (task: Task, index: number) => number): TaskVector {
  return TASKS.map((task, i) => f(task, i)) as TaskVector;
}

/** A plain array of TASK_COUNT numbers as a task vector, or an error naming `what`. */
export function toTaskVector(values: readonly number[], what: string): TaskVector {
  if (values.length !== TASK_COUNT) throw new Error(`${what} must have ${TASK_COUNT} values (${TASKS.join(', ')}), got ${values.length}`);
  return [...values] as TaskVector;
}

export function namedTaskValues(vector: TaskVector): NamedTaskValues {
  return Object.fromEntries(TASKS.map((task, i) => [TASK_NAMES[task], vector[i]])) as NamedTaskValues;
}
