package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/** Compares what {@link Ext4Reader} sees with a {@link TestTree}. */
public final class ReaderCheck {
    private ReaderCheck() {}

    public static void compare(Ext4Reader r, TestTree tree) throws IOException {
        Map<String, Long> groupInode = new HashMap<>();
        for (TestTree.Node n : tree.nodes().values()) {
            FileStat s = r.stat(n.path(), java.nio.file.LinkOption.NOFOLLOW_LINKS);
            String where = n.path();
            assertEquals(n.md().mode(), s.mode(), where);
            assertEquals(n.md().uid(), s.uid(), where);
            assertEquals(n.md().gid(), s.gid(), where);
            assertEquals(n.md().mtime(), s.mtime(), where);
            assertEquals(n.md().atime(), s.atime(), where);
            assertEquals(n.md().ctime(), s.ctime(), where);
            assertEquals(n.md().crtime(), s.crtime(), where);
            switch (n.kind()) {
                case DIR -> assertEquals(FileType.DIRECTORY, s.type(), where);
                case FILE -> {
                    assertEquals(FileType.REGULAR, s.type(), where);
                    assertEquals(n.size(), s.size(), where);
                    assertEquals(TestTree.sha256(n), TestTree.sha256(r.open(s.ino())), where);
                }
                case SYMLINK -> {
                    assertEquals(FileType.SYMLINK, s.type(), where);
                    assertEquals(n.target(), r.readLink(s.ino()), where);
                }
                case CHR, BLK -> {
                    assertEquals(n.kind() == TestTree.Kind.CHR ? FileType.CHAR_DEVICE : FileType.BLOCK_DEVICE, s.type());
                    assertEquals(n.major(), s.major(), where);
                    assertEquals(n.minor(), s.minor(), where);
                }
                case FIFO -> assertEquals(FileType.FIFO, s.type(), where);
                case SOCK -> assertEquals(FileType.SOCKET, s.type(), where);
            }
            Map<String, String> want = new TreeMap<>();
            n.md().xattrs().forEach((k, v) -> want.put(k, HexFormat.of().formatHex(v)));
            Map<String, String> got = new TreeMap<>();
            r.xattrs(s.ino()).forEach((k, v) -> got.put(k, HexFormat.of().formatHex(v)));
            assertEquals(want, got, "xattrs of " + where);
            if (n.linkGroup() != null) {
                Long other = groupInode.putIfAbsent(n.linkGroup(), s.ino());
                if (other != null) {
                    assertEquals(other.longValue(), s.ino(), "hard link " + where);
                }
                long members = tree.nodes().values().stream().filter(o -> n.linkGroup().equals(o.linkGroup())).count();
                assertEquals(members, s.links(), where);
            }
        }
        // Nothing in the image that the tree does not imply.
        r.walk((p, st) -> {
            if (p.equals("/") || p.startsWith("/lost+found") || tree.nodes().containsKey(p)) {
                return;
            }
            assertTrue(st.isDirectory() && tree.nodes().keySet().stream().anyMatch(k -> k.startsWith(p + "/")),
                    "unexpected entry in image: " + p);
        });
    }
}
