// The collection picker: lists the collections askq knows as the field's suggestions, and says in
// its hint when it cannot (no key, a refused key, an error). The field stays free text either way.

import { apiKey, getCollections, readError } from './api.js';
import { $, authDetails } from './dom.js';

/** Fetches GET /v1/collections and shows the result; never rejects. */
export async function loadCollections() {
  const hint = $('collection-hint');
  const list = $('collection-list');
  try {
    const res = await getCollections();
    if (res.status === 401) {
      list.replaceChildren();
      hint.textContent = apiKey()
        ? 'The API key was refused: check it below.'
        : 'askq needs an API key: enter it below to list collections.';
      authDetails.open = true;
      return;
    }
    if (!res.ok) {
      const error = await readError(res);
      hint.textContent = `Could not list collections (${error.code}); type a name.`;
      return;
    }
    /** @type {{ collections?: Array<{ name: string, documents: number }> }} */
    const { collections = [] } = await res.json();
    list.replaceChildren(
      ...collections.map((c) => {
        const option = document.createElement('option');
        option.value = c.name;
        option.label = `${c.name} — ${c.documents} documents`;
        return option;
      }),
    );
    hint.textContent =
      collections.length === 0
        ? 'No collections yet; "default" is used.'
        : `${collections.length} ${collections.length === 1 ? 'collection' : 'collections'}: ${collections
            .map((c) => `${c.name} (${c.documents} documents)`)
            .join(', ')}.`;
  } catch {
    hint.textContent = 'Could not list collections; type a name.';
  }
}
