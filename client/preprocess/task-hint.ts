/** What a user does when a model does not fit a dataset's task: re-preprocess with --task, or pick another model. */
import type { DatasetManifest } from '../../channels/index.js';

const NEEDS: Record<string, 'binary' | 'multiclass' | undefined> = { 'sparse-lr': 'binary', 'dense-lr': 'binary', svm: 'binary', softmax: 'multiclass', mlp: 'multiclass' };

export function misfitHint(model: string, m: Pick<DatasetManifest, 'name' | 'task' | 'source'>): string {
  const need = NEEDS[model];
  if (!need || m.task === need) return '';
  if (need === 'binary' && m.task === 'multiclass') return ". For more than two classes use 'softmax' or 'mlp'";
  const from = m.source ? `${m.source.file} --format ${m.source.format}` : '<input> --format <format>';
  return `. If the labels are ${need === 'binary' ? 'two classes' : 'classes'}, preprocess again with the task set: cirrus preprocess ${from} --name ${m.name} --task ${need} --overwrite`;
}
