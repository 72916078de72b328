import type { ReactNode } from "react";

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
  /** Right-aligned, tabular figures. */
  numeric?: boolean;
  /** A CSS width, e.g. "8rem"; fixed widths keep a table still while its rows update. */
  width?: string;
}

/**
 * A table with a caption (for screen readers; shown when `showCaption`), one row per item, and a sentence
 * in place of rows when there are none.
 */
export function DataTable<T>({
  caption,
  columns,
  rows,
  rowKey,
  empty,
  showCaption = false,
}: {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  empty: ReactNode;
  showCaption?: boolean;
}) {
  return (
    <div className="table-wrap">
      <table className="data-table">
        <caption className={showCaption ? undefined : "visually-hidden"}>{caption}</caption>
        <colgroup>
          {columns.map((c) => (
            <col key={c.header} style={c.width ? { width: c.width } : undefined} />
          ))}
        </colgroup>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.header} scope="col" className={c.numeric ? "numeric" : undefined}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} className="empty">
                {empty}
              </td>
            </tr>
          ) : (
            rows.map((r) => (
              <tr key={rowKey(r)}>
                {columns.map((c) => (
                  <td key={c.header} className={c.numeric ? "numeric" : undefined}>
                    {c.cell(r)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}
