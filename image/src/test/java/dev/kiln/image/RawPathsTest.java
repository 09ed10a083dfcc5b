package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Names;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** A path's last component as kiln carries names, read from the path's own bytes. */
class RawPathsTest {
    @Test
    void theNameOfAUtf8PathIsItsFileName() {
        for (String s : new String[] {"/a/b/c", "/a", "rel", "rel/x", "/tmp/dir/file-12345", "/x/\u00e9t\u00e9", "/y/\u4e2d\u6587.txt",
            "./a/./b", "/a//b"}) {
            Path p = Path.of(s);
            assertEquals(p.getFileName().toString(), RawPaths.name(p), s);
        }
    }

    @Test
    void aNameThatIsNotUtf8KeepsItsBytesThroughResolveAndName() {
        assertTrue(RawPaths.available(), "the tests run with java.base/sun.nio.fs opened (pom argLine)");
        byte[] raw = {'k', (byte) 0xff, 'i', (byte) 0xc3, 'l', (byte) 0xe9, 'n'}; // 0xff, a cut sequence, Latin-1
        String name = Names.decode(raw);
        assertTrue(Names.hasRawBytes(name));
        Path p = RawPaths.resolve(Path.of("/some/dir"), name);
        assertEquals(name, RawPaths.name(p));
        assertEquals(java.util.HexFormat.of().formatHex(raw), java.util.HexFormat.of().formatHex(Names.encode(RawPaths.name(p))));
        assertEquals("/some/dir/" + name, RawPaths.string(p));
    }
}
