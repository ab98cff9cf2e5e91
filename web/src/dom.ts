/** A small element builder and the page's status line. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(key.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(key, '');
    else element.setAttribute(key, String(value));
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

export function clear(element: Element): void {
  element.replaceChildren();
}

export function status(message: string, error = false): void {
  const line = document.getElementById('status')!;
  line.textContent = message;
  line.classList.toggle('error', error);
}

/** Runs an action, showing its error in the status line rather than losing it. */
export async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    status((e as Error).message, true);
    console.error(e);
  }
}

export const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : '–');

/** A drop zone that also opens a file picker (keyboard: Enter or Space on the button). */
export function dropZone(id: string, label: string, accept: string, onFiles: (files: File[]) => void, multiple = true): HTMLElement {
  const input = h('input', { id, type: 'file', accept, multiple, hidden: true });
  input.addEventListener('change', () => {
    if (input.files?.length) onFiles([...input.files]);
    input.value = '';
  });
  const zone = h('div', { class: 'drop' }, h('p', {}, label), h('button', { class: 'secondary', type: 'button', onclick: () => input.click() }, 'Choose files…'), input);
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) onFiles(files);
  });
  return zone;
}
