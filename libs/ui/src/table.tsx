import type { ReactNode } from 'react';

export interface Column<T> {
  key: string;
  header: ReactNode;
  cell: (row: T) => ReactNode;
}

/** A plain data table for short lists (long ones are virtualised by the page). */
export function Table<T>({
  columns: all,
  rows,
  rowKey,
  caption,
  empty,
  hidden,
}: {
  columns: readonly Column<T>[];
  rows: readonly T[];
  rowKey: (row: T) => string;
  caption: string;
  empty?: ReactNode;
  /** Keys of columns not to show (a viewer's page leaves out its `actions`). */
  hidden?: readonly string[];
}) {
  const columns = hidden?.length ? all.filter((c) => !hidden.includes(c.key)) : all;
  return (
    <table className="fw-table">
      <caption className="fw-visually-hidden">{caption}</caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c.key} scope="col">
              {c.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={rowKey(r)} data-row={rowKey(r)}>
            {columns.map((c) => (
              <td key={c.key}>{c.cell(r)}</td>
            ))}
          </tr>
        ))}
        {rows.length === 0 && empty && (
          <tr>
            <td colSpan={columns.length} className="fw-muted">
              {empty}
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
