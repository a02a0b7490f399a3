// `datetime-local` inputs: what they show (the viewer's zone, to the minute) and the instant they stand for. One pair
// for every form (silences, maintenance windows, status page announcements).

const pad = (n: number) => String(n).padStart(2, '0');

/** An instant as a `datetime-local` input shows it: the viewer's own zone, to the minute. */
export function toLocalInput(iso: string | number | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * A `datetime-local` value (the viewer's zone) → ISO; the text itself when it is not a time (the contract names it).
 * `stored`: the time the field was filled from — given back as it was (seconds included) while the field still shows
 * it, so saving a form without touching a time does not move it to its minute.
 */
export function fromLocalInput(value: string, stored?: string | null): string {
  if (value && stored && toLocalInput(stored) === value) return stored;
  const d = new Date(value);
  return value && !Number.isNaN(d.getTime()) ? d.toISOString() : value;
}
