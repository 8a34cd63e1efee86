/**
 * Whether a model's runs have a test accuracy: k-means has no labels to match and matrix
 * factorization is a regression, so theirs is always 0 and they are judged by their test loss
 * (k-means: the within-cluster sum of squares per row; mf: the mean squared error).
 */
export function hasAccuracy(model: unknown): boolean {
  return model !== 'kmeans' && model !== 'mf';
}
