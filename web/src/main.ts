/** The web app: four parts behind tabs (address hash #predict, #models, #finetune, #device). */
import { status } from './dom';
import { initDevice } from './device';
import { initFinetune } from './finetune';
import { initModels } from './models';
import { initPredict } from './predict';

const PARTS: Readonly<Record<string, (root: HTMLElement) => Promise<void> | void>> = Object.freeze({
  predict: initPredict,
  models: initModels,
  finetune: initFinetune,
  device: initDevice,
});
const started = new Set<string>();
const tabs = [...document.querySelectorAll<HTMLButtonElement>('nav [role="tab"]')];

function show(part: string, focus = false): void {
  if (!(part in PARTS)) part = 'predict';
  for (const tab of tabs) {
    const selected = tab.dataset.part === part;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected && focus) tab.focus();
    document.getElementById(tab.dataset.part!)!.hidden = !selected;
  }
  if (location.hash !== `#${part}`) history.replaceState(null, '', `#${part}`);
  if (!started.has(part)) {
    started.add(part);
    Promise.resolve(PARTS[part](document.getElementById(part)!)).catch((e: Error) => status(e.message, true));
  }
}

for (const tab of tabs) {
  tab.addEventListener('click', () => show(tab.dataset.part!));
  tab.addEventListener('keydown', (event) => {
    const i = tabs.indexOf(tab);
    const next = event.key === 'ArrowRight' ? i + 1 : event.key === 'ArrowLeft' ? i - 1 : event.key === 'Home' ? 0 : event.key === 'End' ? tabs.length - 1 : -1;
    if (next === -1) return;
    event.preventDefault();
    show(tabs[(next + tabs.length) % tabs.length].dataset.part!, true);
  });
}
window.addEventListener('hashchange', () => show(location.hash.slice(1)));
show(location.hash.slice(1));
document.body.dataset.ready = 'true';
