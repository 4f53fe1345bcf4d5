// A form's error line: the API's (or our own) error shown naming its field, the field
// marked aria-invalid and focused. `labels`: API field name → what the form calls it.
export function clearError(form, line) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  line.textContent = "";
  line.hidden = true;
}

export function showError(form, line, error, labels = {}) {
  const field = error.field || null;
  const label = field ? labels[field] || field : null;
  line.textContent = error.status === 429 ? "Too many attempts: wait a little and try again." : label ? `${label}: ${error.message}` : error.message;
  line.hidden = false;
  const input = field && form.elements.namedItem(field);
  if (input && input.setAttribute) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

/** An error of our own (checked before asking the API), shaped like an ApiError. */
export function fieldError(field, message) {
  return { field, message, status: 0 };
}
