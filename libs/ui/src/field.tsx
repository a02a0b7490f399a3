import {
  useId,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from 'react';

interface FieldFrame {
  label: string;
  /** Shown under the control; tied to it with aria-describedby. */
  hint?: ReactNode;
  /** A validation message: marks the control invalid and is announced with it. */
  error?: string | null;
}

function useFieldIds(id: string | undefined) {
  const auto = useId();
  const control = id ?? `fw${auto.replace(/:/g, '')}`;
  return { control, hint: `${control}-hint`, error: `${control}-error` };
}

function describedBy(ids: { hint: string; error: string }, hint: unknown, error: unknown): string | undefined {
  const parts = [error ? ids.error : null, hint ? ids.hint : null].filter(Boolean);
  return parts.length ? parts.join(' ') : undefined;
}

function Frame({
  label,
  hint,
  error,
  ids,
  children,
}: FieldFrame & { ids: ReturnType<typeof useFieldIds>; children: ReactNode }) {
  return (
    <div className="fw-field">
      <label className="fw-field__label" htmlFor={ids.control}>
        {label}
      </label>
      {children}
      {hint && (
        <span className="fw-field__hint" id={ids.hint}>
          {hint}
        </span>
      )}
      {error && (
        <span className="fw-field__error" id={ids.error} role="alert">
          {error}
        </span>
      )}
    </div>
  );
}

export function TextField({ label, hint, error, id, ...rest }: FieldFrame & InputHTMLAttributes<HTMLInputElement>) {
  const ids = useFieldIds(id);
  return (
    <Frame label={label} hint={hint} error={error} ids={ids}>
      <input
        id={ids.control}
        className="fw-input"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(ids, hint, error)}
        {...rest}
      />
    </Frame>
  );
}

export function TextAreaField({
  label,
  hint,
  error,
  id,
  ...rest
}: FieldFrame & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const ids = useFieldIds(id);
  return (
    <Frame label={label} hint={hint} error={error} ids={ids}>
      <textarea
        id={ids.control}
        className="fw-textarea"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(ids, hint, error)}
        {...rest}
      />
    </Frame>
  );
}

export interface SelectOption {
  value: string;
  label: string;
}

export function SelectField({
  label,
  hint,
  error,
  id,
  options,
  ...rest
}: FieldFrame & SelectHTMLAttributes<HTMLSelectElement> & { options: readonly SelectOption[] }) {
  const ids = useFieldIds(id);
  return (
    <Frame label={label} hint={hint} error={error} ids={ids}>
      <select
        id={ids.control}
        className="fw-select"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(ids, hint, error)}
        {...rest}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </Frame>
  );
}

export function Checkbox({ label, ...rest }: { label: string } & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <label className="fw-checkbox">
      <input type="checkbox" {...rest} />
      {label}
    </label>
  );
}

/** The options ticked once `option` is (un)ticked, in the options' order; anything not an option is dropped. */
export function ticked<T extends string>(options: readonly T[], selected: readonly T[], option: T, on: boolean): T[] {
  return options.filter((x) => (x === option ? on : selected.includes(x)));
}

/**
 * A row of checkboxes, one per option, as a named group ("Kinds: ☐ check ☐ host …"). `onToggle` gets the option
 * clicked and whether it is now ticked: the owner applies it to the selection as it is then (`ticked`), not as this
 * render saw it — two clicks before the first one's change has rendered must both count. `error` follows the boxes.
 */
export function CheckboxGroup<T extends string>({
  label,
  options,
  selected,
  onToggle,
  error,
}: {
  label: string;
  options: readonly T[];
  selected: readonly T[];
  onToggle: (option: T, on: boolean) => void;
  error?: string;
}) {
  return (
    <div className="fw-row" role="group" aria-label={label}>
      <span className="fw-muted">{label}:</span>
      {options.map((o) => (
        <Checkbox
          key={o}
          label={o}
          checked={selected.includes(o)}
          data-option={o}
          onChange={(e) => onToggle(o, e.target.checked)}
        />
      ))}
      {error && (
        <span className="fw-field__error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
