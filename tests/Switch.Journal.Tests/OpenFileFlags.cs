namespace Switch.Tests.Support;

/// <summary>How this process has a file open, as the kernel says (Linux: <c>/proc/self/fdinfo</c>): the open flags of
/// every descriptor on it. Shared by the journal's and the archive's tests (linked into both).</summary>
internal static class OpenFileFlags
{
    public const int WriteOnly = 0x1, ReadWrite = 0x2, Direct = 0x4000, Sync = 0x101000;

    /// <summary>The flags of each descriptor open on <paramref name="path"/> (empty: none open).</summary>
    public static List<int> Of(string path)
    {
        string full = Path.GetFullPath(path);
        var flags = new List<int>();
        foreach (string fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try { target = new FileInfo(fd).LinkTarget; }
            catch (IOException) { continue; } // closed meanwhile
            if (target != full) continue;
            string info;
            try { info = File.ReadAllText(Path.Combine("/proc/self/fdinfo", Path.GetFileName(fd))); }
            catch (IOException) { continue; }
            string line = info.Split('\n').Single(l => l.StartsWith("flags:", StringComparison.Ordinal));
            flags.Add(Convert.ToInt32(line["flags:".Length..].Trim(), 8));
        }
        return flags;
    }

    /// <summary>True if some descriptor on <paramref name="path"/> writes it with every bit of <paramref name="required"/>.</summary>
    public static bool WrittenWith(string path, int required) =>
        Of(path).Any(f => (f & (WriteOnly | ReadWrite)) != 0 && (f & required) == required);
}
