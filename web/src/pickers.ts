/** Model and version pickers shared by the parts of the app. */
import { modelNames, versionsOf, type ModelVersions } from './api';
import { h } from './dom';

export interface ModelPicker {
  element: HTMLElement;
  model(): string;
  /** undefined: the serving ("latest") version. */
  version(): string | undefined;
  refresh(): Promise<void>;
  /** Shows `model` and `version` as chosen (e.g. for a resumed run). */
  select(model: string, version: number): Promise<void>;
}

export function modelPicker(id: string, onChange?: () => void): ModelPicker {
  const models = h('select', { id: `${id}-model` });
  const versions = h('select', { id: `${id}-version` });
  const refreshVersions = async () => {
    const chosen = versions.value;
    versions.replaceChildren(h('option', { value: '' }, 'serving (latest)'));
    let info: ModelVersions | undefined;
    try {
      info = await versionsOf(models.value);
    } catch {
      return; // fine-tuning switched off on the server: only the serving version
    }
    for (const v of info.versions) versions.append(h('option', { value: String(v.version) }, `${v.version}${v.latest ? ' (latest)' : ''}`));
    if ([...versions.options].some((o) => o.value === chosen)) versions.value = chosen;
  };
  models.addEventListener('change', () => void refreshVersions().then(onChange));
  versions.addEventListener('change', () => onChange?.());
  const element = h('div', { class: 'row' }, h('label', {}, 'Model', models), h('label', {}, 'Version', versions));
  return {
    element,
    model: () => models.value,
    version: () => versions.value || undefined,
    select: async (model, version) => {
      models.value = model;
      await refreshVersions();
      versions.value = String(version);
    },
    refresh: async () => {
      const names = await modelNames();
      const chosen = models.value;
      models.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
      if (names.includes(chosen)) models.value = chosen;
      await refreshVersions();
    },
  };
}

export function keyField(id: string, value: () => string, save: (key: string) => void): HTMLElement {
  const input = h('input', { id, type: 'password', autocomplete: 'off', placeholder: 'fine-tune key', value: value() });
  input.addEventListener('change', () => save(input.value));
  return h('label', {}, 'Key', input);
}
