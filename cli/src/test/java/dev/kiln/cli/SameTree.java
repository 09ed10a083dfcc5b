package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.FileStat;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;

/** Compares two images' trees by metadata: type, mode (setuid bits included), owner, device numbers, xattrs, link targets. */
final class SameTree {
    private SameTree() {}

    static void assertSameMetadata(Ext4Reader expected, Ext4Reader actual) throws Exception {
        assertSameMetadata(expected, actual, p -> false);
    }

    static void assertSameMetadata(Ext4Reader expected, Ext4Reader actual, Predicate<String> ignore) throws Exception {
        Map<String, String> a = describe(expected, ignore);
        Map<String, String> b = describe(actual, ignore);
        List<String> diffs = new ArrayList<>();
        for (String p : a.keySet()) {
            if (!b.containsKey(p)) {
                diffs.add("only in the first: " + p + " " + a.get(p));
            } else if (!a.get(p).equals(b.get(p))) {
                diffs.add(p + ": " + a.get(p) + " vs " + b.get(p));
            }
        }
        for (String p : b.keySet()) {
            if (!a.containsKey(p)) {
                diffs.add("only in the second: " + p + " " + b.get(p));
            }
        }
        if (!diffs.isEmpty()) {
            fail(diffs.size() + " differences (of " + a.size() + " paths), first ones:\n  "
                    + String.join("\n  ", diffs.subList(0, Math.min(40, diffs.size()))));
        }
    }

    private static Map<String, String> describe(Ext4Reader r, Predicate<String> ignore) throws Exception {
        Map<String, String> out = new TreeMap<>();
        r.walk((p, st) -> {
            if (!ignore.test(p)) {
                out.put(p, line(r, st));
            }
        });
        return out;
    }

    private static String line(Ext4Reader r, FileStat st) throws java.io.IOException {
        StringBuilder sb = new StringBuilder();
        sb.append(st.type()).append(' ').append(Integer.toOctalString(st.mode())).append(' ').append(st.uid()).append(':')
                .append(st.gid());
        switch (st.type()) {
            case CHAR_DEVICE, BLOCK_DEVICE -> sb.append(" dev=").append(st.major()).append(',').append(st.minor());
            case SYMLINK -> sb.append(" -> ").append(r.readLink(st.ino()));
            default -> { }
        }
        for (Map.Entry<String, byte[]> x : new TreeMap<>(r.xattrs(st.ino())).entrySet()) {
            sb.append(' ').append(x.getKey()).append('=').append(Arrays.toString(x.getValue()));
        }
        return sb.toString();
    }
}
