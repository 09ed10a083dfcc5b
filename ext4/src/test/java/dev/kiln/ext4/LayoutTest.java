package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Geometry as mke2fs 1.47 lays it out for the same sizes (figures read off dumpe2fs). */
class LayoutTest {
    @Test
    void default150MiB4k() {
        Layout l = new Layout(4096, 150L << 20, 16384, 0, 256, 16, true);
        assertEquals(38400, l.blocksCount);
        assertEquals(2, l.groupCount);
        assertEquals(1, l.descBlocks);
        assertEquals(18, l.reservedGdtBlocks);
        assertEquals(4800, l.inodesPerGroup);
        assertEquals(300, l.inodeBlocksPerGroup);
        assertEquals(9600, l.inodesCount);
        assertEquals(20, l.blockBitmap[0]);
        assertEquals(21, l.blockBitmap[1]);
        assertEquals(22, l.inodeBitmap[0]);
        assertEquals(23, l.inodeBitmap[1]);
        assertEquals(24, l.inodeTable[0]);
        assertEquals(324, l.inodeTable[1]);
        assertEquals(5632, l.groupBlocks(1));
        // group 1 starts with its backup superblock, GDT and reserved GDT
        assertTrue(l.fixed.get(32768));
        assertTrue(l.fixed.get(32787));
        assertFalse(l.fixed.get(32788));
    }

    @Test
    void oneKiBBlocksStartAtBlockOne() {
        Layout l = new Layout(1024, 150L << 20, 4096, 0, 256, 16, true);
        assertEquals(1, l.firstDataBlock);
        assertEquals(153600, l.blocksCount);
        assertEquals(19, l.groupCount);
        assertEquals(256, l.reservedGdtBlocks);
        assertEquals(2024, l.inodesPerGroup);
        assertEquals(260, l.blockBitmap[0]);
        assertEquals(276, l.inodeBitmap[0]);
        assertEquals(292, l.inodeTable[0]);
        assertEquals(8193, l.groupFirstBlock(1));
    }

    @Test
    void smallLastGroupIsDropped() {
        // 32768 + 40 blocks: a 40-block last group cannot hold its own metadata, so it goes.
        Layout l = new Layout(4096, (32768L + 40) * 4096, 16384, 0, 256, 16, true);
        assertEquals(1, l.groupCount);
        assertEquals(32768, l.blocksCount);
    }

    @Test
    void sparseSuperGroups() {
        int[] with = {0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343};
        for (int g : with) {
            assertTrue(Layout.hasSuper(g), "group " + g);
        }
        for (int g : new int[] {2, 4, 6, 8, 10, 11, 15, 21, 45, 50, 100}) {
            assertFalse(Layout.hasSuper(g), "group " + g);
        }
    }

    @Test
    void journalSizeFollowsMke2fs() {
        assertEquals(0, Layout.defaultJournalBlocks(2047));
        assertEquals(1024, Layout.defaultJournalBlocks(20000));
        assertEquals(4096, Layout.defaultJournalBlocks(38400));
        assertEquals(16384, Layout.defaultJournalBlocks(1L << 20));
        assertEquals(262144, Layout.defaultJournalBlocks(1L << 30));
    }

    @Test
    void explicitInodeCountIsRoundedToFullTableBlocks() {
        Layout l = new Layout(4096, 150L << 20, 16384, 1000, 256, 16, true);
        assertEquals(0, l.inodesPerGroup % 16);
        assertTrue(l.inodesCount >= 1000);
    }

    @Test
    void tooSmallImageIsRefused() {
        assertThrows(CapacityExceededException.class, () -> new Layout(4096, 30 * 4096, 16384, 0, 256, 16, true));
    }

    @Test
    void manyGroupsPlaceTablesInFlexGroups() {
        Layout l = new Layout(4096, 8L << 30, 16384, 0, 256, 16, true);
        assertEquals(64, l.groupCount);
        // Group 16 is the first of the second flex group: its tables live at its start.
        assertEquals(l.groupFirstBlock(16), l.blockBitmap[16]);
        for (int g = 0; g < l.groupCount; g++) {
            assertTrue(l.inodeTable[g] + l.inodeBlocksPerGroup <= l.blocksCount);
        }
    }
}
