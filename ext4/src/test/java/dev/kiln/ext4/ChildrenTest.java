package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The writer's directory table against the JDK's TreeMap, which kept a directory's entries
 * before (and fixed the order inode numbers are handed out in): random puts, replacements,
 * removals, look-ups and sorts, with ASCII, multi-byte UTF-8, undecodable and 255-byte names.
 * The seed is fixed; {@code -Dkiln.test.seed=N} tries another.
 */
class ChildrenTest {
    private static final long SEED = Long.getLong("kiln.test.seed", 20261203L);

    @Test
    void behavesAsATreeMapOfTheSameNames() {
        Random rnd = new Random(SEED);
        for (int round = 0; round < 40; round++) {
            Children<Integer> table = new Children<>();
            TreeMap<String, Integer> oracle = new TreeMap<>();
            List<String> pool = new ArrayList<>();
            int names = 1 + rnd.nextInt(round < 20 ? 40 : 3000);
            for (int i = 0; i < names; i++) {
                pool.add(name(rnd));
            }
            int ops = names * 4;
            for (int op = 0; op < ops; op++) {
                String n = pool.get(rnd.nextInt(pool.size()));
                int what = rnd.nextInt(100);
                String where = "seed " + SEED + " round " + round + " op " + op + " name " + n;
                if (what < 55) {
                    assertEquals(oracle.put(n, op), table.put(n, op), where);
                } else if (what < 70) {
                    assertEquals(oracle.remove(n), table.remove(n), where);
                } else if (what < 98) {
                    assertEquals(oracle.get(n), table.get(n), where);
                } else {
                    assertOrder(oracle, table, where);
                }
                assertEquals(oracle.size(), table.size(), where);
            }
            assertOrder(oracle, table, "seed " + SEED + " round " + round);
            for (String n : pool) { // look-ups on the sorted table
                assertEquals(oracle.get(n), table.get(n), "sorted, " + n);
            }
            assertNull(table.get("never-put-" + round));
        }
    }

    private static void assertOrder(TreeMap<String, Integer> oracle, Children<Integer> table, String where) {
        table.sort();
        assertEquals(new ArrayList<>(oracle.keySet()), table.sortedNames(), where);
        List<Integer> values = new ArrayList<>();
        for (Integer v : table) {
            values.add(v);
        }
        assertEquals(new ArrayList<>(oracle.values()), values, where);
        for (int i = 0; i < table.size(); i++) {
            assertEquals(oracle.get(Names.decode(table.name(i))), table.value(i), where);
        }
    }

    /** A name as the writer gets it: decoded from bytes, so undecodable bytes arrive as escapes. */
    private static String name(Random rnd) {
        int kind = rnd.nextInt(10);
        if (kind < 5) {
            return "f" + rnd.nextInt(500);
        }
        if (kind == 5) {
            return "x".repeat(254) + (char) ('a' + rnd.nextInt(3)); // 255 bytes
        }
        String[] pieces = {"a", "Z", "é", "ü", "日本", "\uD83D\uDE00", "\uFFFD", "\uE000", "-", "."};
        StringBuilder sb = new StringBuilder();
        for (int i = 0, n = 1 + rnd.nextInt(4); i < n; i++) {
            sb.append(pieces[rnd.nextInt(pieces.length)]);
        }
        String s = sb.toString();
        if (kind >= 8) { // bytes that are not UTF-8
            byte[] b = Names.encode(s);
            byte[] bad = java.util.Arrays.copyOf(b, b.length + 1);
            bad[b.length] = (byte) (0x80 + rnd.nextInt(0x40));
            return Names.decode(bad);
        }
        return s.equals(".") ? "dot" : s;
    }
}
