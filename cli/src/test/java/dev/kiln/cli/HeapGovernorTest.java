package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The build's heap governor: when it asks for a full collection, and that it does. */
class HeapGovernorTest {
    @Test
    void aFullCollectionIsDueAnEighthAboveWhatWasLiveAndNeverBelow64MiB() {
        assertEquals(64L << 20, HeapGovernor.threshold(0));
        assertEquals(64L << 20, HeapGovernor.threshold(40L << 20)); // 48 MiB < the floor
        assertEquals((80L << 20) + (10L << 20), HeapGovernor.threshold(80L << 20));
        assertEquals((800L << 20) + (100L << 20), HeapGovernor.threshold(800L << 20));
    }

    @Test
    void aHeapGrownPastTheFloorGetsAFullCollection() throws Exception {
        long before = fullCollections();
        HeapGovernor.start();
        List<byte[]> held = new ArrayList<>();
        for (int i = 0; i < 96; i++) {
            held.add(new byte[1 << 20]);
        }
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (fullCollections() == before && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(fullCollections() > before, "no full collection with 96 MiB held for up to 10 s");
        assertEquals(96, held.size());
    }

    /** Collections of the whole heap (System.gc() is one on every collector these tests run on). */
    private static long fullCollections() {
        long n = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            String name = gc.getName();
            if (name.contains("Old") || name.contains("MarkSweep") || name.contains("Full")) {
                n += gc.getCollectionCount();
            }
        }
        return n;
    }
}
