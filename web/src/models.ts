/** Models: the repository, each model's versions with their metrics, the serving pointer; promote or roll back with a key. */
import { modelNames, postJson, savedKey, versionsOf, type VersionInfo } from './api';
import { append, fmt, guarded, h, status } from './dom';
import { keyField } from './pickers';

function metricsText(v: VersionInfo): string {
  const m = v.metrics ?? {};
  const pick = (set: unknown) => set as Record<string, number> | undefined;
  const test = pick(m.test) ?? pick((m.finetune as { heldOut?: { candidate?: unknown } } | undefined)?.heldOut?.candidate);
  if (!test) return '–';
  const parts = [['class acc.', test.classAccuracy], ['obj. F1', test.objectnessF1], ['box IoU', test.boxMeanIoU], ['detection', test.detectionCorrect]] as const;
  return parts.filter(([, x]) => typeof x === 'number').map(([k, x]) => `${k} ${fmt(x as number)}`).join(' · ');
}

function lineageText(v: VersionInfo): string {
  const l = v.lineage ?? {};
  const from = typeof l.from === 'string' && !l.from.startsWith('/') ? `from ${l.from}` : '';
  const how = l.source ? String(l.source) : l.jobId ? `job ${l.jobId}` : '';
  return [from, how].filter(Boolean).join(', ') || '–';
}

export async function initModels(root: HTMLElement): Promise<void> {
  const list = h('div', { id: 'models-list' });
  const render = async () => {
    list.replaceChildren();
    for (const name of await modelNames()) {
      let info;
      try {
        info = await versionsOf(name);
      } catch (e) {
        list.append(h('h3', {}, name), h('p', { class: 'muted' }, `versions unavailable: ${(e as Error).message}`));
        continue;
      }
      const rows = info.versions.map((v) =>
        h(
          'tr',
          { 'data-version': v.version },
          h('td', {}, String(v.version), v.latest ? h('strong', { class: 'good' }, ' serving') : null),
          h('td', {}, v.createdAt ? new Date(v.createdAt).toLocaleString() : '–'),
          h('td', {}, v.error ? h('span', { class: 'bad' }, v.error) : metricsText(v)),
          h('td', {}, lineageText(v)),
          h('td', {}, v.latest ? '' : h('button', { class: 'secondary', type: 'button', onclick: () => void setLatest(name, v.version) }, v.version > info.latest ? 'Promote' : 'Roll back')),
        ),
      );
      append(
        list,
        h('h3', {}, `${name} — serving version ${info.latest}`),
        h('div', { class: 'scroll' }, h('table', { 'data-model': name }, h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Created'), h('th', {}, 'Metrics'), h('th', {}, 'Lineage'), h('th', {}, ''))), h('tbody', {}, ...rows))),
        info.history.length ? h('p', { class: 'muted' }, `Pointer history: ${info.history.slice(-6).map((e) => `${e.version} (${e.reason})`).join(' → ')}`) : null,
      );
    }
  };
  const setLatest = (model: string, version: number) =>
    guarded(async () => {
      const result = await postJson<{ latest: number; previous: number }>(`/v2/models/${encodeURIComponent(model)}/rollback`, { version }, savedKey.get());
      status(`${model}: serving version ${result.latest} (was ${result.previous})`);
      await render();
    });
  root.append(
    h('h2', {}, 'Models'),
    h('p', { class: 'muted' }, 'Every version with its recorded metrics. Moving the serving pointer needs the fine-tune key.'),
    h('div', { class: 'row' }, keyField('models-key', savedKey.get, savedKey.set), h('button', { class: 'secondary', type: 'button', onclick: () => void guarded(render) }, 'Refresh')),
    list,
  );
  await render();
}
