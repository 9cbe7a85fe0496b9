// A modal confirmation on the page's own <dialog>: focus is trapped and returned, and Escape
// keeps things as they are.

/** Resolves true when the operator confirms. */
export const confirmAction = (title, text, confirmLabel) => {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = confirmLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    // The safe choice has the focus, so a stray Enter changes nothing.
    dialog.querySelector('button[value=cancel]').focus();
  });
};
