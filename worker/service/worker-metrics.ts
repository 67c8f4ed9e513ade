/** What the worker reports for its metrics; the metrics server's recorder, or nothing. */
export interface WorkerMetrics {
  commandFinished(outcome: string, durationMs: number): void;
  messagePickedUp(lagMs: number): void;
  trackInFlight(read: () => number): void;
}
