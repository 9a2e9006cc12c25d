/** Price filters in cents: a minimum rounds up, a maximum rounds down, so no price outside the range matches. */
export function priceRangeCents(minPrice?: number, maxPrice?: number) {
  return {
    minPriceCents: minPrice === undefined ? undefined : Math.ceil(Math.round(minPrice * 1e6) / 1e4),
    maxPriceCents: maxPrice === undefined ? undefined : Math.floor(Math.round(maxPrice * 1e6) / 1e4),
  };
}
