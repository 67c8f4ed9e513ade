/**
 * Where an attempt ran, as its result records it (pure): the host or pod, the node and image that
 * Kubernetes' Downward API and the image's own variables tell, the program's version, the pool and
 * how many commands the worker runs at once (what a pool's suggested size is multiplied by).
 */

/** The variables placementOf reads (the tasker's and the worker's tables of variables include them). */
export const placementEnvironment = {
  POD_NAME: { default: 'unset: not in a pod', description: "Recorded with each result as `pod` (k8s/: the Downward API's metadata.name)." },
  NODE_NAME: { default: 'unset', description: "Recorded with each result as `node` (k8s/: the Downward API's spec.nodeName)." },
  TASKER_IMAGE: { default: 'set by the images', description: 'Recorded with each result as `image`: the image the program runs in (tasker.Dockerfile and worker.Dockerfile set it from their IMAGE build argument).' },
} as const;

export interface Placement {
  /** The machine's host name (a pod's name in a pod). */
  host: string;
  /** POD_NAME (Downward API); absent outside Kubernetes. */
  pod?: string;
  /** NODE_NAME (Downward API): the node the pod ran on. */
  node?: string;
  /** TASKER_IMAGE, set in the image at build time (tasker.Dockerfile, worker.Dockerfile). */
  image?: string;
  /** The version of the tasker or worker that ran it. */
  workerVersion: string;
  /** The worker's pools (comma-separated when several); absent for the tasker's own slots. */
  pool?: string;
  /** Commands it runs at once: the worker's concurrency, the tasker's -j. */
  slots: number;
}

/** The placement of this process, from its environment (`env` an argument: only composition roots read process.env). */
export function placementOf(env: NodeJS.ProcessEnv, own: { hostname: string; version: string; slots: number; pools?: readonly string[] }): Placement {
  const placement: Placement = { host: own.hostname, workerVersion: own.version, slots: own.slots };
  const set = (key: 'pod' | 'node' | 'image', name: string): void => {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') placement[key] = value;
  };
  set('pod', 'POD_NAME');
  set('node', 'NODE_NAME');
  set('image', 'TASKER_IMAGE');
  if (own.pools !== undefined && own.pools.length > 0) placement.pool = own.pools.join(',');
  return placement;
}
