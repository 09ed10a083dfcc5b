package dev.kiln.cli;

/**
 * Keeps the heap near what is live during a build, whatever the JDK's serial collector decides.
 *
 * <p>On JDK 17 the serial collector collects the old generation when it is full and then sizes
 * it from {@code MinHeapFreeRatio}/{@code MaxHeapFreeRatio}, which the launchers set to 10-20 %.
 * Newer ones (the release runtime, JDK 25) count the old generation's uncommitted space as room
 * for promotion, so young collections promote into an old generation that only grows: a million
 * files took 390 MiB there, 150 on JDK 17, with no full collection in the whole build. This
 * daemon thread looks at the heap's use ten times a second (two native calls) and asks for a
 * full collection when the heap holds more than an eighth (at least 8 MiB) above what was live
 * after the last one; the collection then returns the rest to the system (a quarter, polled
 * every 200 ms, left 180 MiB). Builds that stay under
 * 64 MiB of heap are never touched, so small builds pay one sleeping thread.
 */
final class HeapGovernor {
    private static final long FLOOR = 64L << 20;
    private static final long MIN_SLACK = 8L << 20;
    private static final long PERIOD_MS = 100;

    private HeapGovernor() {}

    /** Starts the governor thread once per process. */
    static synchronized void start() {
        if (started || Boolean.getBoolean("kiln.noHeapGovernor")) { // the property: for A/B runs
            return;
        }
        started = true;
        Thread t = new Thread(HeapGovernor::run, "kiln-heap-governor");
        t.setDaemon(true);
        t.start();
    }

    private static boolean started;

    /** Heap use above which a full collection is due, given the use after the last one. */
    static long threshold(long liveAfterCollection) {
        return Math.max(FLOOR, liveAfterCollection + Math.max(MIN_SLACK, liveAfterCollection / 8));
    }

    private static void run() {
        Runtime rt = Runtime.getRuntime();
        long limit = FLOOR;
        try {
            while (true) {
                Thread.sleep(PERIOD_MS);
                long used = rt.totalMemory() - rt.freeMemory();
                if (used > limit) {
                    System.gc();
                    limit = threshold(rt.totalMemory() - rt.freeMemory());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
