// The page's elements, looked up once when the modules load. Module scripts run after the document
// is parsed, so every id exists by now: a missing one means index.html and the scripts are out of
// step, and it fails loudly at load rather than at the first click.

/**
 * The element with this id, or an error naming it.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
}

// Only the elements more than one module touches; the rest are looked up where they are used.
export const form = /** @type {HTMLFormElement} */ ($('ask-form'));
export const questionInput = /** @type {HTMLTextAreaElement} */ ($('question'));
export const collectionInput = /** @type {HTMLInputElement} */ ($('collection'));
export const modelSelect = /** @type {HTMLSelectElement} */ ($('model'));
export const topKInput = /** @type {HTMLInputElement} */ ($('topK'));
export const cacheInput = /** @type {HTMLInputElement} */ ($('cache'));
export const keyInput = /** @type {HTMLInputElement} */ ($('api-key'));
export const authDetails = /** @type {HTMLDetailsElement} */ ($('auth-details'));
export const cancelButton = /** @type {HTMLButtonElement} */ ($('cancel-button'));
export const askButton = /** @type {HTMLButtonElement} */ ($('ask-button'));
export const answerEl = $('answer');
