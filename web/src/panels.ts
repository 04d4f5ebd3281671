/**
 * On a phone-sized screen the panels become tabs (one panel at a time, no horizontal scroll);
 * on a wide screen every panel shows and the tab bar is hidden by CSS.
 */
import { byId } from './dom';

const PANELS = ['markets', 'chart', 'ticket', 'positions'] as const;

type Panel = (typeof PANELS)[number];
let showPanelAt: (index: number) => void = () => {};

/** On a phone, brings a panel to the front (after picking an instrument: its chart). */
export function showPanel(panel: Panel): void {
  if (window.matchMedia('(max-width: 760px)').matches) showPanelAt(PANELS.indexOf(panel));
}

export function setupPanels(): void {
  const buttons = PANELS.map((p) => byId(`ptab-${p}`));
  const show = (index: number, focus = false) => {
    PANELS.forEach((p, i) => {
      const on = i === index;
      buttons[i].setAttribute('aria-selected', String(on));
      buttons[i].tabIndex = on ? 0 : -1;
      byId(`panel-${p}`).classList.toggle('active', on);
    });
    if (focus) buttons[index].focus();
    window.dispatchEvent(new Event('resize'));
  };
  buttons.forEach((b, i) => {
    b.addEventListener('click', () => show(i));
    b.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight') show((i + 1) % PANELS.length, true);
      if (e.key === 'ArrowLeft') show((i + PANELS.length - 1) % PANELS.length, true);
    });
  });
  showPanelAt = show;
  show(1);
}
