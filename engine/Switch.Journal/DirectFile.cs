using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// Opens a file with <c>O_DIRECT</c> on Linux (for writing, and for reading what is read once): writes go from the
/// caller's aligned buffer to the disk with no copy into the page cache (and leave no dirty pages for the kernel to
/// write back later). .NET has no such option on Linux (<c>FileOptions</c> 0x20000000, "no buffering", is ignored there). A file system that refuses <c>O_DIRECT</c>
/// (an older tmpfs) and other systems get the file buffered: <see cref="Open"/> says which.
/// </summary>
public static class DirectFile
{
    /// <summary>O_DIRECT's alignment of memory, offsets and lengths: the page size covers every block size.</summary>
    public const int AlignBytes = 4096;

    /// <summary>Opens <paramref name="path"/> write-only, created if missing, emptied with <paramref name="truncate"/>;
    /// <paramref name="sync"/>: every write durable before it returns (<c>O_SYNC</c>, as <c>FileOptions.WriteThrough</c>).
    /// <paramref name="direct"/>: true if opened <c>O_DIRECT</c>, false if buffered.</summary>
    public static SafeFileHandle Open(string path, bool truncate, bool sync, out bool direct)
    {
        if (OperatingSystem.IsLinux() && DirectFlag() is int directFlag and not 0)
        {
            const int O_WRONLY = 0x1, O_CREAT = 0x40, O_TRUNC = 0x200, O_SYNC = 0x101000, O_CLOEXEC = 0x80000;
            int flags = O_WRONLY | O_CREAT | O_CLOEXEC | directFlag | (truncate ? O_TRUNC : 0) | (sync ? O_SYNC : 0);
            int fd = Native.open(path, flags, 0b110_100_100);
            if (fd >= 0)
            {
                direct = true;
                return new SafeFileHandle(fd, ownsHandle: true);
            }
            int errno = Marshal.GetLastPInvokeError();
            const int EINVAL = 22;
            if (errno != EINVAL) throw new IOException($"open({path}) for a direct write failed, errno {errno}");
            // EINVAL: this file system takes no O_DIRECT: buffered below.
        }
        direct = false;
        return File.OpenHandle(path, truncate ? FileMode.Create : FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite,
            sync ? FileOptions.WriteThrough : FileOptions.None);
    }

    /// <summary>Opens <paramref name="path"/> read-only with <c>O_DIRECT</c> where the file system takes it: a read goes from
    /// the disk into the caller's aligned buffer, with no copy and no page-cache pages to fill and later reclaim (what a
    /// retirement reads once is never read again). Offsets, lengths and memory must be aligned to <see cref="AlignBytes"/>;
    /// a read short of its length is the file's end. Null: no such file. <paramref name="tryDirect"/> false: buffered, with
    /// the kernel's readahead. <paramref name="direct"/>: false if buffered.</summary>
    public static SafeFileHandle? OpenRead(string path, bool tryDirect, out bool direct)
    {
        if (tryDirect && OperatingSystem.IsLinux() && DirectFlag() is int directFlag and not 0)
        {
            const int O_RDONLY = 0x0, O_CLOEXEC = 0x80000;
            int fd = Native.open(path, O_RDONLY | O_CLOEXEC | directFlag, 0);
            if (fd >= 0)
            {
                direct = true;
                return new SafeFileHandle(fd, ownsHandle: true);
            }
            int errno = Marshal.GetLastPInvokeError();
            const int ENOENT = 2, EINVAL = 22;
            direct = false;
            if (errno == ENOENT) return null;
            if (errno != EINVAL) throw new IOException($"open({path}) for a direct read failed, errno {errno}");
        }
        direct = false;
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>O_DIRECT's value, which differs by architecture; 0: not known here (written buffered).</summary>
    private static int DirectFlag() => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 or Architecture.X86 => 0x4000,
        Architecture.Arm64 or Architecture.Arm => 0x10000,
        _ => 0,
    };

    private static class Native
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);
    }
}
