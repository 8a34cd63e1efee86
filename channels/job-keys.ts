/**
 * Keys a training job uses besides the collectives' own (all under job/<jobId>/, so `clean`
 * removes a job with one prefix):
 *   job/<id>/model/latest            the newest model rank 0 published (msgpack: weights, step, epoch)
 *   job/<id>/model/epoch/<n>         the model at the end of epoch n (1-based), until the client evaluated it
 *   job/<id>/progress/<rank>         a worker's latest progress record (msgpack)
 *   job/<id>/ckpt/<ckptId>/<rank>    checkpoint of a worker, in the object store (msgpack: weights, optimizer state, position)
 *   job/<id>/asp/<rank>              ASP: a worker's cumulative update and its step (msgpack)
 *   job/<id>/final                   the final model (tensor frame), written by rank 0
 *   job/<id>/ps/model                async-sgd: the model's name on the parameter server
 *   job/<id>/ps/stop/<generation>    async-sgd: set by a rank that stops for a checkpoint
 *   job/<id>/ps/done/<gen>/<rank>    async-sgd: a rank finished its epochs in this generation
 */
import { jobKey } from './keys.js';

export const modelLatestKey = (jobId: string) => jobKey(jobId, 'model', 'latest');
export const progressKey = (jobId: string, rank: number) => jobKey(jobId, 'progress', rank);
export const checkpointKey = (jobId: string, ckptId: number, rank: number) => jobKey(jobId, 'ckpt', ckptId, rank);
export const aspKey = (jobId: string, rank: number) => jobKey(jobId, 'asp', rank);
export const finalModelKey = (jobId: string) => jobKey(jobId, 'final');
export const epochModelKey = (jobId: string, epoch: number) => jobKey(jobId, 'model', 'epoch', epoch);
export const psModelName = (jobId: string) => jobKey(jobId, 'ps', 'model');
export const psStopKey = (jobId: string, generation: number) => jobKey(jobId, 'ps', 'stop', generation);
export const psDoneKey = (jobId: string, generation: number, rank: number) => jobKey(jobId, 'ps', 'done', generation, rank);
/** async-sgd: how many pushes of a rank the server has taken (u32 LE), so a relaunch does not push them twice. */
export const psPushedKey = (jobId: string, rank: number) => jobKey(jobId, 'ps', 'pushed', rank);
