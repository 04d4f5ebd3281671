/**
 * The open-position forms beyond SL/TP: closing part of a position (checked like the engine:
 * on the step, less than all of it, leaving the minimum) and the trailing distance field of
 * the SL/TP form with a preview of where the stop-loss would move.
 */
import { type Api, ApiError, type Asset, newIdempotencyKey, type OpenPosition } from '../api/client';
import { closePart } from '../api/orders';
import { h } from '../dom';
import { formatDecimal } from '../money';
import { halfQuantity, partialCloseError, remainingQuantity, trailedStop, trailingDistanceError } from '../order-rules';
import type { Store } from '../store';
import { toast } from './toast';

/** A position's trailing distance (null: none). */
export function trailingOf(p: OpenPosition): string | null {
  return p.trailingDistance ?? null;
}

/** The inline "close part" form; `done` runs after a close or on Cancel. */
export function partialCloseForm(api: Api, p: OpenPosition, asset: Asset, done: () => void): HTMLFormElement {
  const quantity = h('input', { id: `part-qty-${p.id}`, inputmode: 'decimal', autocomplete: 'off', value: halfQuantity(p.quantity, asset) ?? '' });
  const note = h('span', { class: 'muted num' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'danger small' }, 'Close part');
  const check = () => {
    const problem = partialCloseError(quantity.value, p.quantity, asset);
    note.textContent = problem ? '' : `${remainingQuantity(p.quantity, quantity.value, asset)} ${p.asset} stays open`;
    error.textContent = problem ?? '';
    submit.disabled = problem !== null;
    return problem;
  };
  const form = h('form', { class: 'edit-levels', 'aria-label': `Close part of position ${p.id}` },
    h('label', { for: quantity.id }, `Quantity to close (of ${p.quantity})`), quantity, note, submit,
    h('button', { type: 'button', class: 'secondary small', onclick: done }, 'Cancel'),
    error);
  quantity.addEventListener('input', check);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (check()) return;
    submit.disabled = true;
    const q = quantity.value.trim();
    closePart(api, p.id, q, newIdempotencyKey()).then(() => {
      const left = remainingQuantity(p.quantity, q, asset);
      toast(`Closed ${q} ${p.asset} of position #${p.id}; ${left} stays open`, 'success');
      done();
    }, (err: unknown) => {
      error.textContent = err instanceof ApiError ? err.message : 'Could not close part of the position.';
      submit.disabled = false;
    });
  });
  check();
  return form;
}

/** The trailing distance input of the SL/TP form, with where the stop would move now. */
export function trailingField(store: Store, p: OpenPosition, decimals: number): { elements: HTMLElement[]; input: HTMLInputElement; error(): string | null } {
  const input = h('input', { id: `edit-trail-${p.id}`, inputmode: 'decimal', autocomplete: 'off', value: trailingOf(p) ?? '', placeholder: 'none' });
  const hint = h('span', { class: 'muted num' });
  const error = () => (input.value.trim() === '' ? null : trailingDistanceError(input.value, decimals));
  const show = () => {
    const q = store.quote(p.asset);
    const v = input.value.trim();
    hint.textContent = q && v && !error() ? `stop now ${formatDecimal(trailedStop(p.side, p.stopLoss, q.bid, q.ask, v), decimals)}` : '';
  };
  input.addEventListener('input', show);
  show();
  return { elements: [h('label', { for: input.id }, 'Trailing distance'), input, hint], input, error };
}
