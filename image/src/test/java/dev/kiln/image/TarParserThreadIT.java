package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.ExternalTools;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Large archives are parsed on a second thread that reads content into the read-ahead ring
 * (files over 1 MiB in pieces); small ones on the writer's thread. Both paths must write the
 * same image from the same archive: here an archive made by GNU tar (PAX, a sparse file, hard
 * links, sizes around the 1 MiB piece and the 8 MiB ring), OCI layers with whiteouts, and a
 * truncated archive.
 */
class TarParserThreadIT {
    private static final long SEED = Long.getLong("kiln.tarparser.seed", 20261203L);
    private final long threshold = TarSource.parserThreadFrom;

    @TempDir Path tmp;

    @AfterEach
    void restore() {
        TarSource.parserThreadFrom = threshold;
    }

    @Test
    void aGnuTarArchiveGivesTheSameImageParsedInlineOrOnTheParserThread() throws Exception {
        ExternalTools.require("e2fsck");
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(SEED);
        List<String> names = randomFiles(src, 60, 4, r, i -> switch (i % 5) {
            case 0 -> (1 << 20) + r.nextInt(3) - 1;
            case 1 -> 3 * (1 << 20) + r.nextInt(100_000);
            case 2 -> r.nextInt(4000);
            case 3 -> (8 << 20) - 4096 * r.nextInt(3);
            default -> r.nextInt(600_000);
        });
        Files.createLink(src.resolve("d3/link-to-f1"), src.resolve("d1/f1"));
        Files.createSymbolicLink(src.resolve("sym"), Path.of("d0/f0"));
        Files.createDirectories(src.resolve("x".repeat(120)).resolve("y".repeat(120)));
        try (var f = new java.io.RandomAccessFile(src.resolve("sparse").toFile(), "rw")) {
            f.setLength(20L << 20);
            f.seek(7L << 20);
            f.write(new byte[] {1, 2, 3});
        }
        Path tar = tmp.resolve("t.tar");
        var made = ExternalTools.run(List.of("tar", "--format=posix", "--sparse", "-C", src.toString(), "-cf", tar.toString(), "."));
        assertEquals(0, made.exit(), made.out());

        TarSource.parserThreadFrom = Long.MAX_VALUE;
        Path inline = build(tar, "inline.img");
        TarSource.parserThreadFrom = 0;
        Path threaded = build(tar, "threaded.img");

        assertEquals(-1L, Files.mismatch(inline, threaded), "the same image either way");
        ExternalTools.assertFsckClean(threaded);
        try (Ext4Reader rd = Ext4Reader.open(threaded)) {
            for (String n : names) {
                assertArrayEquals(Files.readAllBytes(src.resolve(n)), rd.readAllBytes("/" + n), n);
            }
            assertArrayEquals(Files.readAllBytes(src.resolve("sparse")), rd.readAllBytes("/sparse"));
            assertEquals(rd.stat("/d1/f1").ino(), rd.stat("/d3/link-to-f1").ino());
        }
        assertFalse(parserAlive(), "the parser thread ends with the archive");
    }

    @Test
    void layerWhiteoutsAndOpaqueDirectoriesWorkOnTheParserThread() throws Exception {
        TarSource.parserThreadFrom = 0;
        Path layout = Files.createDirectories(tmp.resolve("layout"));
        String desc = OciFixture.image(layout, OciSourceTest.layers(), OciFixture.Codec.GZIP, "linux", "amd64");
        OciFixture.index(layout, List.of(OciFixture.tagged(desc, "latest")));
        Path img = tmp.resolve("oci.img");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).build())) {
            Sources.parse("oci:" + layout + ":latest").applyTo(w);
        }
        assertEquals(OciSourceTest.expected(), OciSourceTest.tree(img));
    }

    @Test
    void aTruncatedArchiveFailsOnBothPathsAndStopsTheParser() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(SEED);
        for (int i = 0; i < 40; i++) {
            byte[] b = new byte[i % 3 == 0 ? 2 << 20 : 5000];
            r.nextBytes(b);
            Files.write(src.resolve("f" + i), b);
        }
        Path tar = tmp.resolve("t.tar");
        assertEquals(0, ExternalTools.run(List.of("tar", "-C", src.toString(), "-cf", tar.toString(), ".")).exit());
        byte[] all = Files.readAllBytes(tar);
        Path cut = tmp.resolve("cut.tar");
        Files.write(cut, java.util.Arrays.copyOf(all, all.length / 2 + 777));
        for (long from : new long[] {Long.MAX_VALUE, 0}) {
            TarSource.parserThreadFrom = from;
            Exception e = assertThrows(Exception.class, () -> build(cut, "cut-" + from + ".img"));
            assertTrue(e instanceof InvalidSourceException || e instanceof java.io.EOFException, e.toString());
            assertTrue(String.valueOf(e.getMessage()).contains("truncated") || e instanceof java.io.EOFException,
                    e.getMessage());
        }
        for (int i = 0; i < 50 && parserAlive(); i++) {
            Thread.sleep(20);
        }
        assertFalse(parserAlive(), "the parser thread stops when the build fails");
    }

    /**
     * An archive file is read on a thread of its own or not (by its size and whether it is
     * compressed, {@link TarSource#readAhead}), and parsed on the writer's thread or a parser
     * thread: every combination gives the same image, from a GNU tar archive and its gzip.
     */
    @Test
    void anArchiveFileGivesTheSameImageReadAheadOrNotCompressedOrNot() throws Exception {
        ExternalTools.require("e2fsck");
        ExternalTools.require("gzip");
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(SEED + 1);
        List<String> names = randomFiles(src, 40, 3, r, i -> i % 4 == 0 ? (2 << 20) + r.nextInt(5000) : r.nextInt(70_000));
        Path tar = tmp.resolve("t.tar");
        var made = ExternalTools.run(List.of("tar", "--format=posix", "-C", src.toString(), "-cf", tar.toString(), "."));
        assertEquals(0, made.exit(), made.out());
        Path gz = tmp.resolve("t.tar.gz");
        var zipped = ExternalTools.run(List.of("gzip", "-1", "-k", tar.toString()));
        assertEquals(0, zipped.exit(), zipped.out());
        assertTrue(TarSource.readAhead(Files.size(tar), false) && TarSource.readAhead(Files.size(gz), true),
                "both are large enough to be read ahead: " + Files.size(tar) + ", " + Files.size(gz));

        Path first = null;
        for (Path archive : new Path[] {tar, gz}) {
            for (long from : new long[] {Long.MAX_VALUE, 0}) {
                TarSource.parserThreadFrom = from;
                Path img = tmp.resolve(archive.getFileName() + "-" + from + ".img");
                try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).build())) {
                    new TarSource(archive).applyTo(w);
                }
                if (first == null) {
                    first = img;
                    ExternalTools.assertFsckClean(img);
                    try (Ext4Reader rd = Ext4Reader.open(img)) {
                        for (String n : names) {
                            assertArrayEquals(Files.readAllBytes(src.resolve(n)), rd.readAllBytes("/" + n), n);
                        }
                    }
                } else {
                    assertEquals(-1L, Files.mismatch(first, img), img.getFileName() + ": the same image as " + first.getFileName());
                }
            }
        }
    }

    /** {@code count} files of random bytes, file i of {@code size(i)} bytes in directory d(i % dirs); their names. */
    private static List<String> randomFiles(Path src, int count, int dirs, Random r, java.util.function.IntUnaryOperator size)
            throws java.io.IOException {
        List<String> names = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            byte[] b = new byte[size.applyAsInt(i)];
            r.nextBytes(b);
            String name = "d" + (i % dirs) + "/f" + i;
            Files.createDirectories(src.resolve("d" + (i % dirs)));
            Files.write(src.resolve(name), b);
            names.add(name);
        }
        return names;
    }

    private Path build(Path tar, String name) throws Exception {
        Path img = tmp.resolve(name);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(256L << 20).build());
                InputStream in = Files.newInputStream(tar)) {
            TarSource.apply(in, w, "tar:" + tar, null, Files.size(tar));
        }
        return img;
    }

    private static boolean parserAlive() {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("kiln-tar-parse") && t.isAlive());
    }
}
