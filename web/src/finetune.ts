/**
 * Fine-tune on the server: upload images plus annotations.jsonl (or a zip, unpacked here), start
 * a job, follow its live losses, images/s and ETA (Server-Sent Events), and show the promotion
 * gate's verdict with its numbers.
 */
import { unzipSync } from 'fflate';
import type { Decision, Evaluation, JobRecord, StepProgress } from '../../src/finetune/record';
import { getJson, keyHeader, savedKey } from './api';
import { LineChart } from './chart';
import { dropZone, fmt, guarded, h, status } from './dom';
import { keyField, modelPicker } from './pickers';

const COLOURS = { total: '#2457c5', classification: '#b3261e', objectness: '#1d7a3a', box: '#8a5cd0' };

/** Files for the form, named by the paths annotations.jsonl gives them (a picked file only knows its base name). */
async function uploadFiles(picked: File[]): Promise<{ name: string; blob: Blob }[]> {
  const files: { name: string; blob: Blob }[] = [];
  for (const file of picked) {
    if (/\.zip$/i.test(file.name)) {
      const entries = unzipSync(new Uint8Array(await file.arrayBuffer()));
      for (const [name, bytes] of Object.entries(entries)) if (!name.endsWith('/')) files.push({ name, blob: new Blob([bytes as BlobPart]) });
    } else {
      files.push({ name: file.webkitRelativePath || file.name, blob: file });
    }
  }
  const jsonl = files.find((f) => f.name.split('/').pop() === 'annotations.jsonl') ?? files.find((f) => f.name.endsWith('.jsonl'));
  if (!jsonl) throw new Error('no annotations.jsonl among the files: pick it together with the images (or a .zip holding both)');
  const root = jsonl.name.includes('/') ? jsonl.name.slice(0, jsonl.name.lastIndexOf('/') + 1) : '';
  const wanted = new Map<string, string>();
  for (const line of (await jsonl.blob.text()).split(/\r?\n/)) {
    try {
      const file = (JSON.parse(line) as { file?: unknown }).file;
      if (typeof file === 'string') wanted.set(file.split('/').pop()!, file);
    } catch {
      /* the server reports bad lines with their numbers */
    }
  }
  return files.map((f) => {
    const relative = f.name.startsWith(root) ? f.name.slice(root.length) : f.name;
    return { name: f === jsonl ? 'annotations.jsonl' : relative.includes('/') ? relative : (wanted.get(relative) ?? relative), blob: f.blob };
  });
}

export function verdictBox(evaluation: Evaluation | undefined, decision: Decision): HTMLElement {
  const sets = evaluation ? [evaluation.heldOut, ...(evaluation.reference ? [evaluation.reference] : [])] : [];
  const metric = evaluation?.metric;
  return h(
    'div',
    { class: 'verdict', 'data-decision': JSON.stringify(decision) },
    h('strong', { class: decision.promoted ? 'good' : 'bad' }, decision.promoted ? `Version ${decision.version} promoted${decision.forced ? ' (forced)' : ''}` : `Version ${decision.version} kept, not promoted`),
    h('p', {}, decision.reason),
    metric
      ? h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Set'), h('th', {}, 'Samples'), h('th', {}, `${metric} new`), h('th', {}, 'serving'))),
          h('tbody', {}, ...sets.map((s) => h('tr', {}, h('td', {}, s.name), h('td', {}, String(s.samples)), h('td', {}, fmt(s.candidate[metric])), h('td', {}, fmt(s.serving[metric]))))),
        )
      : null,
    h('p', { class: 'muted' }, `Serving version now: ${decision.latest}`),
  );
}

export async function initFinetune(root: HTMLElement): Promise<void> {
  const picker = modelPicker('finetune');
  const field = (id: string, label: string, value: string, attrs: Record<string, string | number> = {}) => {
    const input = h('input', { id, value, ...attrs });
    return { input, element: h('label', {}, label, input) };
  };
  const epochs = field('finetune-epochs', 'Epochs', '3', { type: 'number', min: 1 });
  const steps = field('finetune-steps', 'Max steps (0: all)', '0', { type: 'number', min: 0 });
  const batch = field('finetune-batch', 'Batch size', '32', { type: 'number', min: 1 });
  const lr = field('finetune-lr', 'Learning rate', '0.0005', { type: 'number', step: 'any', min: 0 });
  const share = field('finetune-share', 'Held-out share', '0.2', { type: 'number', step: 'any', min: 0.01, max: 0.5 });
  let picked: File[] = [];
  const pickedText = h('p', { class: 'muted', id: 'finetune-picked' }, 'No data picked yet.');
  const start = h('button', { class: 'action', type: 'button', id: 'finetune-start', disabled: true }, 'Start job');
  const chart = new LineChart('training losses of the job');
  const progress = h('p', { id: 'finetune-progress', 'aria-live': 'polite' });
  const verdict = h('div', { id: 'finetune-verdict' });
  let source: EventSource | undefined;

  const follow = (job: JobRecord) => {
    source?.close();
    chart.reset();
    verdict.replaceChildren();
    const begun = performance.now();
    let firstStep: { step: number; at: number } | undefined;
    let evaluation: Evaluation | undefined;
    source = new EventSource(`/v2/finetune/jobs/${job.id}/events`);
    const on = <T>(type: string, handle: (data: T) => void) => source!.addEventListener(type, (e) => handle(JSON.parse((e as MessageEvent<string>).data) as T));
    on<StepProgress>('step', (s) => {
      firstStep ??= { step: s.step, at: performance.now() };
      const rate = (s.step - firstStep.step) / Math.max(1e-3, (performance.now() - firstStep.at) / 1000);
      const eta = rate > 0 ? (s.totalSteps - s.step) / rate : NaN;
      chart.add('total', COLOURS.total, s.step, s.loss);
      for (const [task, value] of Object.entries(s.losses)) chart.add(task, COLOURS[task as keyof typeof COLOURS], s.step, value);
      chart.draw();
      progress.textContent = `step ${s.step}/${s.totalSteps} · epoch ${s.epoch} · loss ${fmt(s.loss)} · ${fmt(s.imagesPerSecond, 0)} images/s · ETA ${Number.isFinite(eta) ? `${Math.ceil(eta)} s` : '…'}`;
      progress.dataset.step = String(s.step);
    });
    on<{ state: string }>('state', (s) => (progress.dataset.state = s.state));
    on<Evaluation>('evaluation', (e) => (evaluation = e));
    on<Decision>('decision', (d) => verdict.replaceChildren(verdictBox(evaluation, d)));
    on<JobRecord>('end', (j) => {
      source?.close();
      progress.dataset.state = j.state;
      const seconds = ((performance.now() - begun) / 1000).toFixed(0);
      status(`job ${j.id}: ${j.state}${j.error ? ` (${j.error})` : ''} after ${seconds} s`, j.state === 'failed');
    });
    source.onerror = () => status('lost the job’s event stream; reload to follow it again', true);
  };

  start.addEventListener('click', () =>
    guarded(async () => {
      const form = new FormData();
      for (const f of await uploadFiles(picked)) form.append(f.name === 'annotations.jsonl' ? 'annotations' : 'files', f.blob, f.name);
      const params: Record<string, number> = { epochs: Number(epochs.input.value), batch_size: Number(batch.input.value), lr: Number(lr.input.value), val_share: Number(share.input.value) };
      if (Number(steps.input.value) > 0) params.steps = Number(steps.input.value);
      form.append('params', JSON.stringify(params));
      status('uploading…');
      const job = await getJson<JobRecord>(`/v2/models/${encodeURIComponent(picker.model())}/finetune`, { method: 'POST', headers: keyHeader(savedKey.get()), body: form });
      status(`job ${job.id} queued: ${job.data.samples} samples`);
      follow(job);
    }),
  );

  root.append(
    h('h2', {}, 'Fine-tune on the server'),
    h('p', { class: 'muted' }, 'Upload images with annotations.jsonl (or one .zip). The server trains, evaluates and promotes the result only if the gate finds it no worse.'),
    picker.element,
    h('div', { class: 'row' }, keyField('finetune-key', savedKey.get, savedKey.set), epochs.element, steps.element, batch.element, lr.element, share.element),
    dropZone('finetune-files', 'Drop images + annotations.jsonl, or a .zip', '.jsonl,.zip,image/*', (files) => {
      picked = files;
      pickedText.textContent = `${files.length} file(s): ${files.slice(0, 4).map((f) => f.name).join(', ')}${files.length > 4 ? ', …' : ''}`;
      start.disabled = false;
    }),
    pickedText,
    h('div', { class: 'row' }, start),
    progress,
    chart.canvas,
    verdict,
  );
  chart.draw();
  await picker.refresh();
}
