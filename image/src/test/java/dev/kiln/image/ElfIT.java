package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The ELF reader against binutils' readelf, on the host's own programs and libraries. */
class ElfIT {
    @Test
    void loaderAndNeededLibrariesAgreeWithReadelf() throws Exception {
        ExternalTools.require("readelf");
        int checked = 0;
        for (String dir : List.of("/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu")) {
            Path d = Path.of(dir);
            if (!Files.isDirectory(d)) {
                continue;
            }
            List<Path> files;
            try (var s = Files.list(d)) {
                files = s.filter(Files::isRegularFile).sorted().limit(400).toList();
            }
            for (Path f : files) {
                byte[] b = Files.readAllBytes(f);
                if (!Elf.isElf(b)) {
                    continue;
                }
                Elf elf = Elf.parse(b);
                var dyn = ExternalTools.run(List.of("readelf", "-W", "-d", "-l", f.toString()));
                List<String> needed = new ArrayList<>();
                Matcher m = Pattern.compile("\\(NEEDED\\)\\s+Shared library: \\[([^\\]]+)\\]").matcher(dyn.out());
                while (m.find()) {
                    needed.add(m.group(1));
                }
                Matcher interp = Pattern.compile("Requesting program interpreter: ([^\\]]+)\\]").matcher(dyn.out());
                assertEquals(needed, elf.needed(), f.toString());
                assertEquals(interp.find() ? interp.group(1) : null, elf.interpreter(), f.toString());
                checked++;
            }
        }
        assertTrue(checked > 50, "checked " + checked + " ELF files");
    }

    @Test
    void aStaticBinaryNeedsNothingAndAScriptItsInterpreter() throws Exception {
        Path busybox = ExternalTools.require("busybox");
        Elf elf = Elf.parse(Files.readAllBytes(busybox));
        assertEquals(null, elf.interpreter());
        assertTrue(elf.needed().isEmpty());
        assertEquals(Elf.MACHINES.get(OciSource.Platform.host().arch()).intValue(), elf.machine());
        String[] sb = Loader.shebang("#!/usr/bin/env  python3 -u\nprint()\n".getBytes());
        assertEquals("/usr/bin/env", sb[0]);
        assertEquals("python3 -u", sb[1]);
        assertFalse(Elf.isElf("#!/bin/sh\n".getBytes()));
    }
}
