using System.Runtime.InteropServices;

namespace Switch.Journal;

/// <summary>
/// Makes a rename (or a new file) in a directory durable: POSIX only persists the directory entry when the directory
/// itself is fsynced. The journal's manifest and the clearing files both rely on it.
/// </summary>
public static class DirectorySync
{
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
