using System.Runtime.InteropServices;

namespace Switch.Journal;

/// <summary>
/// Makes a rename (or a new file, or a new directory) in a directory durable: POSIX only persists a directory entry when
/// the directory itself is fsynced; an fsync of the file, or creating a directory, does not. The journal (manifest,
/// commit slots, each log segment) and the clearing files rely on it.
/// </summary>
public static class DirectorySync
{
    /// <summary>At most this many missing levels are created at once (a limit on a path walk).</summary>
    private const int MaxCreatedLevels = 64;

    /// <summary>
    /// Creates <paramref name="directory"/> and any missing parents, each durably: after each new directory its parent is
    /// fsynced, so a power cut cannot take away a directory something was written to. The directory's own parent is
    /// fsynced even when nothing was missing: an earlier run may have created it and died before making it durable.
    /// </summary>
    public static void CreateDirectory(string directory)
    {
        string path = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        var missing = new Stack<string>();
        for (string? at = path; at is not null && !Directory.Exists(at); at = Path.GetDirectoryName(at))
        {
            if (missing.Count == MaxCreatedLevels)
                throw new IOException($"{directory}: more than {MaxCreatedLevels} missing directory levels");
            missing.Push(at);
        }
        if (missing.Count == 0)
        {
            string? parent = Path.GetDirectoryName(path);
            if (parent is not null) Flush(parent);
            return;
        }
        while (missing.TryPop(out string? level))
        {
            Directory.CreateDirectory(level);
            Flush(Path.GetDirectoryName(level)!);
        }
    }

    /// <summary>
    /// Writes a whole file so that a crash leaves the old file or the new one, never a part: a temporary beside it,
    /// fsync, rename over the name, fsync of the directory.
    /// </summary>
    public static void WriteFile(string path, ReadOnlySpan<byte> content)
    {
        string temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(content);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        Flush(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsync of <paramref name="directory"/>: its entries (new files, renames, new subdirectories) become durable.</summary>
    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return; // Windows makes a rename durable with the file.
        int fd = Native.open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"open({directory}) for fsync failed, errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (Native.fsync(fd) != 0) throw new IOException($"fsync({directory}) failed, errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            Native.close(fd);
        }
    }

    private static class Native
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
