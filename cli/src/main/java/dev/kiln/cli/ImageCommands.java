package dev.kiln.cli;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Verifier;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.FileType;
import dev.kiln.image.Sizes;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** The commands that look inside an image without mounting it. */
final class ImageCommands {
    private ImageCommands() {}

    /**
     * Opens an image for a reading command and says, on {@code err}, what a reader should know
     * about what it sees: a journal that needs recovery (its last transactions are not applied),
     * a damaged primary superblock read through a backup.
     */
    static Ext4Reader open(Path image, PrintWriter err) throws java.io.IOException {
        Ext4Reader r = open(image);
        if (r.features().contains("needs_recovery")) {
            err.println("kiln: warning: " + image + ": the journal needs recovery (the file system was not unmounted "
                    + "cleanly); kiln reads the blocks as they are, so the last changes may be missing (boot the image "
                    + "once, or run e2fsck, to replay the journal)");
        }
        if (r.backupSuperblock() >= 0) {
            err.println("kiln: warning: " + image + ": the primary superblock is damaged (" + r.primarySuperblockProblem()
                    + "); read with the backup at block " + r.backupSuperblock() + "; kiln verify lists what else is wrong");
        }
        err.flush();
        return r;
    }

    static Ext4Reader open(Path image) throws java.io.IOException {
        if (!Files.exists(image)) {
            throw new java.nio.file.NoSuchFileException(image.toString());
        }
        if (Files.isDirectory(image)) {
            throw new Errors.UsageException(image + ": is a directory, not an image file");
        }
        if (!image.getFileName().toString().endsWith(".gz")) {
            return Ext4Reader.open(image);
        }
        // A published rootfs.ext4.gz: inflate it to a sparse temporary file, open it, and unlink
        // it at once (the open channel keeps the data until the reader is closed).
        Path tmp = Files.createTempFile("kiln-", ".ext4");
        try {
            try (java.io.InputStream in = new java.util.zip.GZIPInputStream(Files.newInputStream(image), 1 << 16);
                    java.nio.channels.FileChannel out = java.nio.channels.FileChannel.open(tmp,
                            java.nio.file.StandardOpenOption.WRITE)) {
                byte[] buf = new byte[1 << 16];
                byte[] zero = new byte[buf.length];
                long pos = 0;
                int n;
                while ((n = in.readNBytes(buf, 0, buf.length)) > 0) {
                    if (java.util.Arrays.mismatch(buf, 0, n, zero, 0, n) >= 0) {
                        java.nio.ByteBuffer bb = java.nio.ByteBuffer.wrap(buf, 0, n);
                        long p = pos;
                        while (bb.hasRemaining()) {
                            p += out.write(bb, p);
                        }
                    }
                    pos += n;
                }
                if (out.size() < pos) {
                    out.write(java.nio.ByteBuffer.wrap(new byte[1]), pos - 1);
                }
            } catch (java.util.zip.ZipException e) {
                throw new dev.kiln.ext4.CorruptImageException(image + ": not a valid gzip file (" + e.getMessage() + ")");
            } catch (java.io.EOFException e) {
                throw new dev.kiln.ext4.CorruptImageException(image + ": the gzip file is truncated (it ends before its "
                        + "data does); download it again");
            }
            return Ext4Reader.open(tmp);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    @Command(name = "inspect",
            description = {"Shows an image's geometry, features, usage and a summary of its content.",
                "Given a registry reference (what kiln push published), shows its manifest digest, layer and annotations "
                        + "without downloading the image."})
    static final class Inspect extends StandardOptions implements Callable<Integer> {
        @Spec CommandSpec spec;

        @Parameters(index = "0", paramLabel = "IMAGE|REF", description = "An image file (rootfs.ext4), or a "
                + "registry reference of an image published with kiln push (its annotations are shown, nothing is downloaded).")
        String target;

        Path image;

        @Option(names = "--json", description = "Print JSON instead of text.") boolean json;

        @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

        @picocli.CommandLine.Mixin RegistryOptions registry;

        @Override
        public Integer call() throws Exception {
            image = Path.of(target);
            if (!java.nio.file.Files.exists(image) && (target.startsWith("docker://")
                    || (!target.startsWith(".") && !target.startsWith("/") && target.matches("[^/]+[.:][^/]*/.+")))) {
                return inspectReference();
            }
            return inspectImage();
        }

        private int inspectReference() throws Exception {
            var reg = registry.registry(spec.commandLine().getErr(), true);
            Map<String, Object> d = dev.kiln.image.RootfsTransfer.describe(reg.client(), reg.cache(),
                    PushCommand.reference(target.startsWith("docker://") ? target : target.contains(":") || target.contains("@")
                            ? target : target + ":latest"));
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                out.println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(d));
                return Kiln.OK;
            }
            out.printf(Locale.ROOT, "reference:    %s%n", d.get("reference"));
            out.printf(Locale.ROOT, "digest:       %s%n", d.get("digest"));
            out.printf(Locale.ROOT, "artifactType: %s%n", d.get("artifactType"));
            if (d.get("layer") instanceof Map<?, ?> l) {
                out.printf(Locale.ROOT, "layer:        %s %s (%s)%n", l.get("mediaType"), l.get("digest"),
                        Sizes.human(((Number) l.get("size")).longValue()));
            }
            out.println("annotations:");
            ((Map<?, ?>) d.get("annotations")).forEach((k, v) -> out.printf(Locale.ROOT, "  %s: %s%n", k, v));
            return Kiln.OK;
        }

        private int inspectImage() throws Exception {
            try (Ext4Reader r = open(image, spec.commandLine().getErr())) {
                var sb = r.superblock();
                // Counted by inode, as the build's summary counts them; hard-linked names are counted apart.
                long[] counts = new long[FileType.values().length];
                java.util.Set<Long> seen = new java.util.HashSet<>();
                long[] names = {0};
                List<Object[]> largest = new ArrayList<>();
                r.walk((p, st) -> {
                    if (st.isRegular()) {
                        names[0]++;
                        largest.add(new Object[] {p, st.size()});
                    }
                    if (st.isDirectory() || seen.add(st.ino())) {
                        counts[st.type().ordinal()]++;
                    }
                });
                largest.sort(Comparator.comparing((Object[] o) -> (Long) o[1]).reversed()
                        .thenComparing(o -> (String) o[0]));
                List<Object[]> top = largest.subList(0, Math.min(10, largest.size()));
                long bs = r.blockSize();
                long jino = r.journalInode();
                long journalBytes = jino == 0 ? 0 : r.stat(jino).size();
                PrintWriter out = spec.commandLine().getOut();
                String uuid = BuildCommand.uuidString(sb.uuid());
                if (json) {
                    Map<String, Object> j = new LinkedHashMap<>();
                    j.put("image", image.toString());
                    j.put("sizeBytes", r.blocksCount() * bs);
                    j.put("blockSize", bs);
                    j.put("uuid", uuid);
                    j.put("label", r.label());
                    j.put("features", r.features());
                    j.put("blocks", Map.of("total", sb.blocksCount(), "free", sb.freeBlocksCount(),
                            "used", sb.blocksCount() - sb.freeBlocksCount()));
                    j.put("inodes", Map.of("total", sb.inodesCount(), "free", sb.freeInodesCount(),
                            "used", sb.inodesCount() - sb.freeInodesCount()));
                    j.put("journalBytes", journalBytes);
                    Map<String, Object> c = new LinkedHashMap<>();
                    c.put("files", counts[FileType.REGULAR.ordinal()]);
                    c.put("directories", counts[FileType.DIRECTORY.ordinal()]);
                    c.put("symlinks", counts[FileType.SYMLINK.ordinal()]);
                    c.put("devices", counts[FileType.CHAR_DEVICE.ordinal()] + counts[FileType.BLOCK_DEVICE.ordinal()]);
                    c.put("fifos", counts[FileType.FIFO.ordinal()]);
                    c.put("sockets", counts[FileType.SOCKET.ordinal()]);
                    j.put("counts", c);
                    List<Map<String, Object>> largestFiles = new java.util.ArrayList<>();
                    for (Object[] t : top) {
                        largestFiles.add(Map.of("path", t[0], "size", t[1]));
                    }
                    j.put("largestFiles", largestFiles);
                    Json.print(out, j);
                } else {
                    out.printf(Locale.ROOT, "image:        %s%n", image);
                    out.printf(Locale.ROOT, "size:         %s (%d blocks of %d bytes)%n", Sizes.human(r.blocksCount() * bs),
                            r.blocksCount(), bs);
                    out.printf(Locale.ROOT, "uuid:         %s%n", uuid);
                    out.printf(Locale.ROOT, "label:        %s%n", r.label().isEmpty() ? "<none>" : r.label());
                    out.printf(Locale.ROOT, "features:     %s%n", String.join(" ", r.features()));
                    out.printf(Locale.ROOT, "blocks:       %d used, %d free (%s free)%n",
                            sb.blocksCount() - sb.freeBlocksCount(), sb.freeBlocksCount(),
                            Sizes.human(sb.freeBlocksCount() * bs));
                    out.printf(Locale.ROOT, "inodes:       %d used, %d free%n", sb.inodesCount() - sb.freeInodesCount(),
                            sb.freeInodesCount());
                    out.printf(Locale.ROOT, "journal:      %s%n", jino == 0 ? "none" : Sizes.human(journalBytes)
                            + " (inode " + jino + ")");
                    long files = counts[FileType.REGULAR.ordinal()];
                    out.printf(Locale.ROOT, "content:      %d files%s, %d directories, %d symlinks, %d devices, %d fifos, "
                            + "%d sockets (inodes)%n", files, names[0] == files ? "" : " (" + names[0] + " names)",
                            counts[FileType.DIRECTORY.ordinal()], counts[FileType.SYMLINK.ordinal()],
                            counts[FileType.CHAR_DEVICE.ordinal()] + counts[FileType.BLOCK_DEVICE.ordinal()],
                            counts[FileType.FIFO.ordinal()], counts[FileType.SOCKET.ordinal()]);
                    if (!top.isEmpty()) {
                        out.println("largest files:");
                        for (Object[] o : top) {
                            out.printf(Locale.ROOT, "  %10s  %s%n", Sizes.human((Long) o[1]), o[0]);
                        }
                    }
                }
            }
            return Kiln.OK;
        }
    }

    @Command(name = "ls", description = "Lists a directory inside an image.")
    static final class Ls extends StandardOptions implements Callable<Integer> {
        private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm", Locale.ROOT)
                .withZone(ZoneOffset.UTC);

        @Spec CommandSpec spec;

        @Parameters(index = "0", paramLabel = "IMAGE", description = "The ext2/3/4 image file.") Path image;

        @Parameters(index = "1", arity = "0..1", paramLabel = "PATH", defaultValue = "/",
                description = "The directory (or file) to list (default: ${DEFAULT-VALUE}).") String path;

        @Option(names = "-l", description = "Long format: mode, links, owner, size, mtime (UTC), name, link target.")
        boolean long_;

        @Option(names = "-R", description = "List subdirectories recursively.") boolean recursive;

        @Option(names = "--json", description = "Print one JSON document: the entries with every attribute.")
        boolean json;

        private final List<Map<String, Object>> entries = new ArrayList<>();

        @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

        @Override
        public Integer call() throws Exception {
            try (Ext4Reader r = open(image, spec.commandLine().getErr())) {
                long ino = r.resolve(path, true);
                FileStat st = r.stat(ino);
                PrintWriter out = spec.commandLine().getOut();
                if (!st.isDirectory()) {
                    print(r, out, path, path, r.stat(path, java.nio.file.LinkOption.NOFOLLOW_LINKS));
                } else {
                    list(r, out, path, ino, false);
                }
                if (json) {
                    Json.print(out, Map.of("image", image.toString(), "path", path, "entries", entries));
                }
            }
            return Kiln.OK;
        }

        private void list(Ext4Reader r, PrintWriter out, String dir, long ino, boolean header) throws Exception {
            List<Ext4Reader.DirEntry> entries = new ArrayList<>(r.list(ino));
            entries.sort(Comparator.comparing(Ext4Reader.DirEntry::name));
            if (header && !json) {
                out.println();
                out.println(dev.kiln.ext4.Names.printable(dir) + ":");
            }
            String prefix = dir.endsWith("/") ? dir : dir + "/";
            for (Ext4Reader.DirEntry e : entries) {
                print(r, out, e.name(), prefix + e.name(), r.stat(e.ino()));
            }
            if (recursive) {
                for (Ext4Reader.DirEntry e : entries) {
                    if (e.type() == FileType.DIRECTORY) {
                        list(r, out, (dir.endsWith("/") ? dir : dir + "/") + e.name(), e.ino(), true);
                    }
                }
            }
        }

        private void print(Ext4Reader r, PrintWriter out, String name, String full, FileStat st) throws Exception {
            if (json) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("path", dev.kiln.ext4.Names.printable(full));
                if (dev.kiln.ext4.Names.hasRawBytes(full)) {
                    // The name's exact bytes, for names that are not UTF-8.
                    e.put("pathBase64", java.util.Base64.getEncoder().encodeToString(dev.kiln.ext4.Names.encode(full)));
                }
                e.put("type", st.type().name().toLowerCase(Locale.ROOT));
                e.put("mode", String.format(Locale.ROOT, "%04o", st.mode() & 07777));
                e.put("uid", st.uid());
                e.put("gid", st.gid());
                e.put("links", st.links());
                e.put("size", st.size());
                e.put("mtime", st.mtime().toString());
                e.put("inode", st.ino());
                if (st.isSymlink()) {
                    e.put("target", dev.kiln.ext4.Names.printable(r.readLink(st.ino())));
                }
                if (st.type() == FileType.CHAR_DEVICE || st.type() == FileType.BLOCK_DEVICE) {
                    e.put("major", st.major());
                    e.put("minor", st.minor());
                }
                entries.add(e);
                return;
            }
            // Names are bytes: what is not printable UTF-8 is shown escaped (\xNN).
            name = dev.kiln.ext4.Names.printable(name);
            if (!long_) {
                out.println(name);
                return;
            }
            String size = st.type() == FileType.CHAR_DEVICE || st.type() == FileType.BLOCK_DEVICE
                    ? st.major() + ", " + st.minor() : Long.toString(st.size());
            String target = st.isSymlink() ? " -> " + dev.kiln.ext4.Names.printable(r.readLink(st.ino())) : "";
            out.printf(Locale.ROOT, "%s %3d %5d %5d %10s %s %s%s%n", st.modeString(), st.links(), st.uid(), st.gid(),
                    size, TIME.format(st.mtime()), name, target);
        }
    }

    @Command(name = "cat", description = "Writes a file from an image to stdout.")
    static final class Cat extends StandardOptions implements Callable<Integer> {
        @Spec CommandSpec spec;

        @Parameters(index = "0", paramLabel = "IMAGE", description = "The ext2/3/4 image file.") Path image;

        @Parameters(index = "1", paramLabel = "PATH", description = "The file inside the image; symlinks are followed.")
        String path;

        @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

        static OutputStream stdout = System.out;

        @Override
        public Integer call() throws Exception {
            try (Ext4Reader r = open(image, spec.commandLine().getErr())) {
                long ino = r.resolve(path, true);
                FileStat st = r.stat(ino);
                if (!st.isRegular()) {
                    throw new Errors.UsageException(path + ": is a " + st.type().name().toLowerCase(Locale.ROOT)
                            + ", not a regular file");
                }
                try (InputStream in = r.open(ino)) {
                    in.transferTo(stdout);
                }
                stdout.flush();
            }
            return Kiln.OK;
        }
    }

    @Command(name = "verify",
            description = {"Checks an image's consistency: checksums, bitmaps, counts, links, directories, htree "
                    + "indexes, extent trees, xattr blocks and the journal.", "Exits 0 only when clean, 3 otherwise."})
    static final class Verify extends StandardOptions implements Callable<Integer> {
        @Spec CommandSpec spec;

        @Parameters(index = "0", paramLabel = "IMAGE", description = "The ext2/3/4 image file.") Path image;

        @Option(names = {"-q", "--quiet"}, description = "Print nothing when the image is clean.") boolean quiet;

        @Option(names = "--json", description = "Print one JSON document: clean or not, and every problem.")
        boolean json;

        @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

        @Option(names = "--boot", description = "Also check that the image can boot: an executable /sbin/init for the "
                + "platform, the loader and libraries it (and the agent) need, #! interpreters, OpenRC runlevel links.")
        boolean boot;

        @Option(names = "--agent-path", paramLabel = "PATH", description = "With --boot: the agent to check too "
                + "(default: /usr/local/bin/agent when the image has it).")
        String agentPath;

        @Option(names = "--platform", paramLabel = "OS/ARCH", description = "With --boot: the platform the image is for "
                + "(default: the host's, ${DEFAULT-VALUE}).")
        String platform = dev.kiln.image.OciSource.Platform.host().toString();

        @Override
        public Integer call() throws Exception {
            List<Ext4Verifier.Problem> problems;
            List<dev.kiln.image.BootCheck.Problem> bootProblems = List.of();
            try (Ext4Reader r = open(image, spec.commandLine().getErr())) {
                problems = Ext4Verifier.verify(r);
                if (boot && problems.isEmpty()) {
                    String arch;
                    try {
                        arch = dev.kiln.image.OciSource.Platform.parse(platform).arch();
                    } catch (IllegalArgumentException e) {
                        throw new Errors.UsageException("--platform: " + e.getMessage());
                    }
                    String agent = agentPath;
                    if (agent == null && r.lookupPath("/usr/local/bin/agent", false) != 0) {
                        agent = "/usr/local/bin/agent";
                    }
                    boolean pid1 = agent != null && r.lookupPath(agent, true) != 0
                            && r.lookupPath(agent, true) == r.lookupPath(dev.kiln.image.BootCheck.INIT, true);
                    bootProblems = new dev.kiln.image.BootCheck(arch, agent, pid1).check(r);
                }
            }
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                Map<String, Object> j = new LinkedHashMap<>();
                j.put("image", image.toString());
                j.put("clean", problems.isEmpty());
                List<Map<String, Object>> list = new ArrayList<>();
                for (Ext4Verifier.Problem p : problems) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    if (p.ino() != 0) {
                        m.put("inode", p.ino());
                    }
                    if (p.path() != null) {
                        m.put("path", dev.kiln.ext4.Names.printable(p.path()));
                    }
                    m.put("message", p.message());
                    list.add(m);
                }
                j.put("problems", list);
                if (boot) {
                    j.put("bootable", problems.isEmpty() && !dev.kiln.image.BootCheck.failed(bootProblems));
                    List<Map<String, Object>> bl = new ArrayList<>();
                    for (var p : bootProblems) {
                        Map<String, Object> m = new LinkedHashMap<>();
                        m.put("severity", p.severity().name().toLowerCase(Locale.ROOT));
                        if (p.path() != null) {
                            m.put("path", p.path());
                        }
                        m.put("message", p.message());
                        bl.add(m);
                    }
                    j.put("bootProblems", bl);
                }
                Json.print(out, j);
            } else {
                for (Ext4Verifier.Problem p : problems) {
                    out.println(image + ": " + p);
                }
                for (var p : bootProblems) {
                    out.println(image + ": " + p);
                }
            }
            if (!problems.isEmpty()) {
                spec.commandLine().getErr().println("error: " + image + ": " + problems.size()
                        + " problem(s) found; the image is not consistent");
                return Kiln.INVALID_INPUT;
            }
            if (dev.kiln.image.BootCheck.failed(bootProblems)) {
                spec.commandLine().getErr().println("error: " + image + ": the image cannot boot to its agent ("
                        + bootProblems.stream().filter(p -> p.severity() == dev.kiln.image.BootCheck.Severity.ERROR).count()
                        + " error(s))");
                return Kiln.INVALID_INPUT;
            }
            if (!quiet && !json) {
                out.println(image + ": clean" + (boot ? (bootProblems.isEmpty() ? ", bootable" : ", bootable with warnings")
                        : ""));
            }
            return Kiln.OK;
        }
    }
}
