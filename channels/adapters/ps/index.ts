/** The parameter-server adapter's door: the channel over the project's TCP parameter server. */
export { PsChannel } from './channel.js';
