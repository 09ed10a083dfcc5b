package dev.kiln.image;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.FileType;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What it takes to start a program, worked out as the kernel and the dynamic loader would: a
 * {@code #!} script needs its interpreter; a dynamically linked ELF needs its loader
 * ({@code PT_INTERP}) and, transitively, its libraries ({@code DT_NEEDED}), looked up in its
 * {@code DT_RUNPATH}/{@code DT_RPATH}, the directories of {@code /etc/ld.so.conf} (glibc) or
 * {@code /etc/ld-musl-ARCH.path} (musl), and the usual library directories. Used on the image
 * ({@link BootCheck}) and on the host ({@link HostLibs}).
 */
final class Loader {
    /** Where a file is looked up: the image being checked, or the host. */
    interface Tree {
        /** The file's content (symlinks followed, at most {@code limit} bytes), or null if it is not a regular file. */
        byte[] read(String path, int limit) throws IOException;

        /** Whether the path is a regular file (symlinks followed) with an execute bit. */
        boolean executable(String path) throws IOException;

        /** The names in a directory; empty if there is none. */
        List<String> list(String dir) throws IOException;
    }

    /** One thing a program needs: a {@code kind} ("interpreter", "loader", "library", "command"), found or not. */
    record Need(String kind, String name, String neededBy, String found, List<String> searched) {}

    /** Programs larger than this are not read for their dependencies (no real executable is). */
    static final int MAX_READ = 256 << 20;
    private static final String[] COMMAND_PATH = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"};

    private final Tree tree;
    private final String arch;
    private List<String> systemDirs;

    Loader(Tree tree, String arch) {
        this.tree = tree;
        this.arch = arch;
    }

    /** Everything {@code program} needs to start, transitively, in the order found. */
    List<Need> needs(String program) throws IOException {
        return needs(program, p -> false);
    }

    /**
     * As {@link #needs(String)}, but what {@code provided} says is already there is not looked
     * into: its own needs are its provider's business.
     */
    List<Need> needs(String program, java.util.function.Predicate<String> provided) throws IOException {
        List<Need> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        Deque<String> todo = new ArrayDeque<>();
        todo.add(program);
        seen.add(program);
        while (!todo.isEmpty()) {
            String p = todo.poll();
            byte[] b = tree.read(p, MAX_READ);
            if (b == null) {
                continue;
            }
            for (Need n : direct(p, b)) {
                out.add(n);
                if (n.found() != null && !provided.test(n.found()) && seen.add(n.found())) {
                    todo.add(n.found());
                }
            }
        }
        return out;
    }

    /** The shebang line's interpreter and its first argument, or null if {@code b} is not a {@code #!} script. */
    static String[] shebang(byte[] b) {
        if (b.length < 2 || b[0] != '#' || b[1] != '!') {
            return null;
        }
        int end = 2;
        while (end < b.length && end < 256 && b[end] != '\n') {
            end++;
        }
        String line = new String(b, 2, end - 2, StandardCharsets.UTF_8).trim();
        if (line.isEmpty()) {
            return new String[] {""};
        }
        return line.split("\\s+", 2);
    }

    private List<Need> direct(String p, byte[] b) throws IOException {
        List<Need> out = new ArrayList<>();
        String[] sb = shebang(b);
        if (sb != null) {
            String interp = sb[0];
            out.add(new Need("interpreter", interp, p, exists(interp) ? interp : null, List.of()));
            if (interp.endsWith("/env") && sb.length > 1 && exists(interp)) {
                String cmd = sb[1].split("\\s+")[0];
                if (!cmd.startsWith("-") && !cmd.contains("=")) {
                    List<String> searched = new ArrayList<>();
                    String found = null;
                    for (String dir : COMMAND_PATH) {
                        searched.add(dir);
                        if (exists(dir + "/" + cmd)) {
                            found = dir + "/" + cmd;
                            break;
                        }
                    }
                    out.add(new Need("command", cmd, p, found, searched));
                }
            }
            return out;
        }
        if (!Elf.isElf(b)) {
            return out;
        }
        Elf elf = Elf.parse(b);
        if (elf.interpreter() != null) {
            out.add(new Need("loader", elf.interpreter(), p, exists(elf.interpreter()) ? elf.interpreter() : null, List.of()));
        }
        for (String lib : elf.needed()) {
            List<String> dirs = searchDirs(p, elf);
            String found = null;
            if (lib.contains("/")) {
                found = exists(lib) ? lib : null;
            } else {
                for (String d : dirs) {
                    if (exists(d + "/" + lib)) {
                        found = (d.endsWith("/") ? d : d + "/") + lib;
                        break;
                    }
                }
            }
            out.add(new Need("library", lib, p, found, dirs));
        }
        return out;
    }

    private boolean exists(String path) throws IOException {
        return path.startsWith("/") && tree.read(path, 0) != null;
    }

    private List<String> searchDirs(String object, Elf elf) throws IOException {
        Set<String> dirs = new LinkedHashSet<>();
        String origin = object.substring(0, Math.max(1, object.lastIndexOf('/')));
        for (String d : elf.runPath()) {
            String x = d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
                    .replace("${LIB}", elf.is64() ? "lib64" : "lib").replace("$LIB", elf.is64() ? "lib64" : "lib");
            if (x.startsWith("/")) {
                dirs.add(x);
            }
        }
        dirs.addAll(systemDirs());
        return new ArrayList<>(dirs);
    }

    /** ld.so.conf's directories (with its includes), musl's path file, then the usual directories. */
    private List<String> systemDirs() throws IOException {
        if (systemDirs != null) {
            return systemDirs;
        }
        Set<String> dirs = new LinkedHashSet<>();
        ldSoConf("/etc/ld.so.conf", dirs, 0);
        String musl = Elf.MUSL.get(arch);
        if (musl != null) {
            byte[] b = tree.read("/etc/ld-musl-" + musl + ".path", 1 << 16);
            if (b != null) {
                for (String d : new String(b, StandardCharsets.UTF_8).split("[:\\n]")) {
                    if (d.trim().startsWith("/")) {
                        dirs.add(d.trim());
                    }
                }
            }
        }
        String triplet = Elf.TRIPLETS.get(arch);
        if (triplet != null) {
            dirs.add("/lib/" + triplet);
            dirs.add("/usr/lib/" + triplet);
        }
        dirs.addAll(List.of("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib"));
        systemDirs = new ArrayList<>(dirs);
        return systemDirs;
    }

    private void ldSoConf(String file, Set<String> dirs, int depth) throws IOException {
        byte[] b = depth > 4 ? null : tree.read(file, 1 << 20);
        if (b == null) {
            return;
        }
        for (String raw : new String(b, StandardCharsets.UTF_8).split("\n")) {
            String line = raw.replaceAll("#.*", "").trim();
            if (line.startsWith("include ") || line.startsWith("include\t")) {
                String pattern = line.substring(8).trim();
                if (!pattern.startsWith("/")) {
                    pattern = "/etc/" + pattern;
                }
                int slash = pattern.lastIndexOf('/');
                String dir = pattern.substring(0, Math.max(1, slash));
                PathMatcher m = FileSystems.getDefault().getPathMatcher("glob:" + pattern.substring(slash + 1));
                List<String> names = new ArrayList<>(tree.list(dir));
                names.sort(null);
                for (String n : names) {
                    if (m.matches(Path.of(n))) {
                        ldSoConf(dir + "/" + n, dirs, depth + 1);
                    }
                }
            } else if (line.startsWith("/")) {
                dirs.add(line.split("[\\s:=,]")[0]);
            }
        }
    }

    /** The image as the tree. */
    static Tree of(Ext4Reader r) {
        return new Tree() {
            @Override
            public byte[] read(String path, int limit) throws IOException {
                long ino = r.lookupPath(path, true);
                if (ino == 0) {
                    return null;
                }
                FileStat st = r.stat(ino);
                if (st.type() != FileType.REGULAR) {
                    return null;
                }
                try (InputStream in = r.open(ino)) {
                    return in.readNBytes((int) Math.min(limit, st.size()));
                }
            }

            @Override
            public boolean executable(String path) throws IOException {
                long ino = r.lookupPath(path, true);
                if (ino == 0) {
                    return false;
                }
                FileStat st = r.stat(ino);
                return st.type() == FileType.REGULAR && (st.mode() & 0111) != 0;
            }

            @Override
            public List<String> list(String dir) throws IOException {
                long ino = r.lookupPath(dir, true);
                if (ino == 0 || r.stat(ino).type() != FileType.DIRECTORY) {
                    return List.of();
                }
                List<String> out = new ArrayList<>();
                for (Ext4Reader.DirEntry e : r.list(ino)) {
                    if (!e.name().equals(".") && !e.name().equals("..")) {
                        out.add(e.name());
                    }
                }
                return out;
            }
        };
    }

    /** The host's file system as the tree. */
    static Tree host() {
        return new Tree() {
            @Override
            public byte[] read(String path, int limit) throws IOException {
                Path p = Path.of(path);
                if (!Files.isRegularFile(p) || !Files.isReadable(p)) {
                    return null;
                }
                try (InputStream in = Files.newInputStream(p)) {
                    return in.readNBytes(limit);
                }
            }

            @Override
            public boolean executable(String path) {
                Path p = Path.of(path);
                return Files.isRegularFile(p) && Files.isExecutable(p);
            }

            @Override
            public List<String> list(String dir) throws IOException {
                Path d = Path.of(dir);
                if (!Files.isDirectory(d)) {
                    return List.of();
                }
                List<String> out = new ArrayList<>();
                try (var s = Files.list(d)) {
                    s.forEach(x -> out.add(x.getFileName().toString()));
                }
                return out;
            }
        };
    }
}
