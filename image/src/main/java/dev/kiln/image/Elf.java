package dev.kiln.image;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What a boot check needs of an ELF file: its machine, its program interpreter
 * ({@code PT_INTERP}) and, from its dynamic section, the libraries it needs ({@code DT_NEEDED})
 * and where it asks for them to be looked up ({@code DT_RUNPATH}, {@code DT_RPATH}). Names
 * follow the System V ABI's {@code elf.h}.
 */
record Elf(int machine, boolean is64, String interpreter, List<String> needed, List<String> runPath) {
    static final int EI_CLASS = 4;
    static final int EI_DATA = 5;
    static final int ELFCLASS64 = 2;
    static final int ELFDATA2MSB = 2;
    static final int PT_LOAD = 1;
    static final int PT_DYNAMIC = 2;
    static final int PT_INTERP = 3;
    static final long DT_NULL = 0;
    static final long DT_NEEDED = 1;
    static final long DT_STRTAB = 5;
    static final long DT_RPATH = 15;
    static final long DT_RUNPATH = 29;

    /** Go's GOARCH names, as OCI platforms use them, to {@code e_machine}. */
    static final Map<String, Integer> MACHINES = Map.of("amd64", 62, "arm64", 183, "386", 3, "arm", 40,
            "riscv64", 243, "ppc64le", 21, "s390x", 22, "mips64le", 8, "loong64", 258);

    /** Debian's multiarch triplets, where glibc looks for libraries by default. */
    static final Map<String, String> TRIPLETS = Map.of("amd64", "x86_64-linux-gnu", "arm64", "aarch64-linux-gnu",
            "386", "i386-linux-gnu", "arm", "arm-linux-gnueabihf", "riscv64", "riscv64-linux-gnu",
            "ppc64le", "powerpc64le-linux-gnu", "s390x", "s390x-linux-gnu");

    /** musl's architecture names, as in {@code /etc/ld-musl-ARCH.path}. */
    static final Map<String, String> MUSL = Map.of("amd64", "x86_64", "arm64", "aarch64", "386", "i386",
            "arm", "armhf", "riscv64", "riscv64", "ppc64le", "powerpc64le", "s390x", "s390x");

    static boolean isElf(byte[] b) {
        return b.length >= 52 && b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F';
    }

    /** The platform name of a machine number, for messages. */
    static String machineName(int machine) {
        for (Map.Entry<String, Integer> e : MACHINES.entrySet()) {
            if (e.getValue() == machine) {
                return e.getKey();
            }
        }
        return "machine " + machine;
    }

    /** Parses what is there; a truncated or odd file gives what could be read, never an exception. */
    static Elf parse(byte[] b) {
        boolean is64 = b[EI_CLASS] == ELFCLASS64;
        boolean be = b[EI_DATA] == ELFDATA2MSB;
        Reader r = new Reader(b, be);
        int machine = r.u16(18);
        long phoff = is64 ? r.u64(32) : r.u32(28);
        int phentsize = r.u16(is64 ? 54 : 42);
        int phnum = r.u16(is64 ? 56 : 44);
        String interp = null;
        long dynOff = -1;
        long dynSize = 0;
        List<long[]> loads = new ArrayList<>();
        for (int i = 0; i < phnum && i < 4096; i++) {
            long ph = phoff + (long) i * phentsize;
            if (ph < 0 || ph + (is64 ? 56 : 32) > b.length) {
                break;
            }
            int p = (int) ph;
            long type = r.u32(p);
            long offset = is64 ? r.u64(p + 8) : r.u32(p + 4);
            long vaddr = is64 ? r.u64(p + 16) : r.u32(p + 8);
            long filesz = is64 ? r.u64(p + 32) : r.u32(p + 16);
            if (type == PT_INTERP) {
                interp = r.string(offset, filesz);
            } else if (type == PT_DYNAMIC) {
                dynOff = offset;
                dynSize = filesz;
            } else if (type == PT_LOAD) {
                loads.add(new long[] {vaddr, offset, filesz});
            }
        }
        List<String> needed = new ArrayList<>();
        List<String> runPath = new ArrayList<>();
        if (dynOff >= 0) {
            List<long[]> entries = new ArrayList<>();
            long strtab = -1;
            int size = is64 ? 16 : 8;
            for (long o = dynOff; o + size <= dynOff + dynSize && o + size <= b.length; o += size) {
                long tag = is64 ? r.u64((int) o) : r.u32((int) o);
                long val = is64 ? r.u64((int) o + 8) : r.u32((int) o + 4);
                if (tag == DT_NULL) {
                    break;
                }
                if (tag == DT_STRTAB) {
                    strtab = fileOffset(loads, val);
                }
                entries.add(new long[] {tag, val});
            }
            if (strtab >= 0) {
                for (long[] e : entries) {
                    String s = r.string(strtab + e[1], 4096);
                    if (s == null || s.isEmpty()) {
                        continue;
                    }
                    if (e[0] == DT_NEEDED) {
                        needed.add(s);
                    } else if (e[0] == DT_RUNPATH || e[0] == DT_RPATH) {
                        runPath.addAll(List.of(s.split(":")));
                    }
                }
            }
        }
        return new Elf(machine, is64, interp, needed, runPath);
    }

    private static long fileOffset(List<long[]> loads, long vaddr) {
        for (long[] l : loads) {
            if (vaddr >= l[0] && vaddr < l[0] + l[2]) {
                return vaddr - l[0] + l[1];
            }
        }
        return -1;
    }

    private record Reader(byte[] b, boolean be) {
        int u16(int o) {
            if (o + 2 > b.length) {
                return 0;
            }
            return be ? (b[o] & 0xff) << 8 | (b[o + 1] & 0xff) : (b[o] & 0xff) | (b[o + 1] & 0xff) << 8;
        }

        long u32(int o) {
            if (o + 4 > b.length) {
                return 0;
            }
            long v = 0;
            for (int i = 0; i < 4; i++) {
                int s = be ? 8 * (3 - i) : 8 * i;
                v |= (long) (b[o + i] & 0xff) << s;
            }
            return v;
        }

        long u64(int o) {
            if (o + 8 > b.length) {
                return 0;
            }
            long v = 0;
            for (int i = 0; i < 8; i++) {
                int s = be ? 8 * (7 - i) : 8 * i;
                v |= (long) (b[o + i] & 0xff) << s;
            }
            return v;
        }

        /** A NUL-terminated string at a file offset, at most {@code max} bytes; null when out of range. */
        String string(long off, long max) {
            if (off < 0 || off >= b.length) {
                return null;
            }
            int end = (int) off;
            long limit = Math.min(b.length, off + Math.max(0, max));
            while (end < limit && b[end] != 0) {
                end++;
            }
            return new String(b, (int) off, end - (int) off, StandardCharsets.UTF_8);
        }
    }
}
