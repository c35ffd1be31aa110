/** The q-quantile (0 < q ≤ 1) of ascending values, by the nearest rank, to 0.1; 0 for none. */
export const quantile = (sorted: number[], q: number) => Number((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0).toFixed(1));
