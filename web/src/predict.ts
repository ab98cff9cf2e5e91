/** Predict: images go to the server's predict endpoint; each comes back with its class, objectness and box. */
import { predictOnServer, type ServerPrediction } from './api';
import { dropZone, fmt, guarded, h, status } from './dom';
import { decodeImage, drawWithBox } from './images';
import { modelPicker } from './pickers';

export function topKList(topK: { label: string; score: number }[]): HTMLElement {
  const bar = (score: number) => {
    const element = h('span', { class: 'bar' });
    element.style.width = `${Math.max(1, score * 100)}%`; // CSSOM, which the page's content security policy allows
    return element;
  };
  return h('ul', { class: 'bars' }, ...topK.map((t) => h('li', {}, h('span', {}, t.label), bar(t.score), h('span', {}, fmt(t.score)))));
}

export function predictionCard(title: string, file: Blob, prediction: ServerPrediction, canvas: HTMLCanvasElement): HTMLElement {
  const { class: cls, object } = prediction;
  return h(
    'article',
    { class: 'card', 'data-prediction': JSON.stringify(prediction) },
    canvas,
    h('h3', {}, object.present ? `${cls.label} ${fmt(cls.score, 2)}` : 'no object'),
    h('p', { class: 'muted' }, `${title} · objectness ${fmt(object.score)} · ${prediction.image.width}×${prediction.image.height} · ${prediction.model_name} v${prediction.model_version}`),
    topKList(cls.top_k),
    h('p', { class: 'muted' }, `box [${[prediction.box.x1, prediction.box.y1, prediction.box.x2, prediction.box.y2].map((v) => v.toFixed(1)).join(', ')}] px`),
    (file as File).name ? h('p', { class: 'muted' }, (file as File).name) : null,
  );
}

export async function initPredict(root: HTMLElement): Promise<void> {
  const picker = modelPicker('predict');
  const topK = h('input', { id: 'predict-topk', type: 'number', min: 1, max: 100, value: 3 });
  const results = h('div', { class: 'cards', id: 'predict-results', 'aria-live': 'polite' });
  const run = (files: File[]) =>
    guarded(async () => {
      status(`predicting ${files.length} image(s)…`);
      for (const file of files) {
        const [image, prediction] = await Promise.all([decodeImage(file), predictOnServer(picker.model(), picker.version(), file, Number(topK.value) || 3)]);
        const { x1, y1, x2, y2 } = prediction.box;
        const canvas = drawWithBox(image, prediction.object.present ? [x1, y1, x2, y2] : undefined, prediction.object.present ? prediction.class.label : undefined);
        results.prepend(predictionCard('server', file, prediction, canvas));
      }
      status(`${files.length} prediction(s) done`);
    });
  root.append(
    h('h2', {}, 'Predict'),
    h('p', { class: 'muted' }, 'The server answers with the class (top-k), the objectness and the box, drawn here in the original pixels.'),
    picker.element,
    h('div', { class: 'row' }, h('label', {}, 'Top k', topK)),
    dropZone('predict-files', 'Drop images here', 'image/*', run),
    results,
  );
  await picker.refresh();
}
