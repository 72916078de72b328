/**
 * Small-count suppression for one categorical column, including complementary (secondary) suppression.
 *
 * The record count N is published, so whatever is hidden has a known total: N minus the shown counts.
 * Hiding a single category would therefore reveal it by subtraction. The rules:
 *
 * 1. Primary: a category with fewer than T records, or fewer than T distinct persons, is hidden.
 * 2. Secondary: while anything is hidden, keep hiding the smallest shown categories until the hidden
 *    group has at least two categories, at least T records and at least T persons, and its total does
 *    not pin every member (all hidden counts equal to 1, or all equal to T-1, would let anyone who knows
 *    how many categories exist compute each of them). Categories tied at the smallest count are hidden
 *    together, so which ones are hidden depends only on counts, never on labels: swapping the counts of
 *    any two hidden categories gives the same output, which keeps every hidden count ambiguous.
 * 3. The hidden total is published as `otherCount`; it is at least T, and shown + other = N always.
 * 4. At most `maxCategories` are listed; smaller ones are folded into `otherCount` the same way.
 *
 * The one output where a hidden count can still be pinned is when every category is hidden and all
 * have the same count of 1 or T-1 (e.g. a column of distinct values): the only number shown is then the
 * record count, and whoever knows how many categories exist can divide.
 */
export interface CategoryCell {
  value: string;
  count: number;
  /** Distinct persons contributing to the category (each row is its own person when the result has none). */
  subjects: ReadonlySet<string>;
}

export interface CategoryCount {
  value: string;
  count: number;
}

export interface SuppressedCategories {
  /** Shown categories, largest first. */
  categories: CategoryCount[];
  /** Total of the hidden categories; 0 when nothing is hidden. */
  otherCount: number;
  hasSuppressed: boolean;
}

export const DEFAULT_MAX_CATEGORIES = 50;

export function suppressCategories(cells: readonly CategoryCell[], threshold: number, maxCategories = DEFAULT_MAX_CATEGORIES): SuppressedCategories {
  const isSmall = (c: CategoryCell) => c.count < threshold || c.subjects.size < threshold;
  const hidden = cells.filter(isSmall);
  const shown = cells.filter((c) => !isSmall(c)).sort((a, b) => a.count - b.count);

  const unprotected = () => {
    if (hidden.length === 0) return false;
    const total = hidden.reduce((s, c) => s + c.count, 0);
    const persons = new Set<string>();
    for (const c of hidden) for (const s of c.subjects) persons.add(s);
    const first = hidden[0]!.count;
    const pinned = hidden.every((c) => c.count === first) && (first === 1 || first === threshold - 1);
    return hidden.length < 2 || total < threshold || persons.size < threshold || pinned;
  };

  while (shown.length > 0 && (unprotected() || shown.length > maxCategories)) {
    const smallest = shown[0]!.count;
    while (shown.length > 0 && shown[0]!.count === smallest) hidden.push(shown.shift()!);
  }

  return {
    categories: shown.map((c) => ({ value: c.value, count: c.count })).sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0)),
    otherCount: hidden.reduce((s, c) => s + c.count, 0),
    hasSuppressed: hidden.length > 0,
  };
}
