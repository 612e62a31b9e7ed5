using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// Makes a file written through the page cache durable without a burst. An fsync hands the disk every dirty page of the
/// file at once: a snapshot's views fsynced the clearing records file with the warm-up's hundreds of MiB still dirty
/// (the kernel writes back only after 30 s), and the journal's O_SYNC commits queued behind them (the harness's p99
/// 75 to 175 ms the second a snapshot began). Here the dirty pages go back <see cref="ChunkBytes"/> at a time, each
/// waited for (Linux's <c>sync_file_range</c>), so a commit queues behind at most one chunk; the fsync after them
/// writes what is left (the metadata, pages dirtied meanwhile). Elsewhere it is the fsync alone.
/// <para><see cref="Start"/> is the same call without the waits: the kernel begins writing a range back and the caller
/// goes on (<see cref="WriteBehind"/> keeps a file's dirty pages bounded with it while the file is appended to).</para>
/// </summary>
public static class WriteBack
{
    /// <summary>What the disk is given at a time: as <see cref="DirectWriter.BufferBytes"/>.</summary>
    public const int ChunkBytes = DirectWriter.BufferBytes;

    /// <summary>Writes back <paramref name="path"/>'s dirty pages a chunk at a time, then fsyncs it. <paramref name="chunk"/>:
    /// told each range's bytes before it is written back (a write budget's hook, or a test's).</summary>
    public static void SyncFile(string path, Action<long>? chunk = null)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        if (OperatingSystem.IsLinux())
        {
            int fd = (int)file.SafeFileHandle.DangerousGetHandle();
            long lengthBytes = file.Length;
            for (long offset = 0; offset < lengthBytes; offset += ChunkBytes)
            {
                long bytes = Math.Min(ChunkBytes, lengthBytes - offset);
                chunk?.Invoke(bytes);
                if (Native.sync_file_range(fd, offset, bytes, Native.WaitBefore | Native.Write | Native.WaitAfter) != 0)
                    throw new IOException($"sync_file_range({path}, {offset}, {bytes}) failed, errno {Marshal.GetLastPInvokeError()}");
            }
        }
        file.Flush(flushToDisk: true);
    }

    /// <summary>Starts the kernel's writeback of <paramref name="bytes"/> of <paramref name="file"/> from
    /// <paramref name="offset"/> and returns without waiting for it (the submission itself may wait for the device's
    /// queue or the file system's block allocation: keep it off a thread that must not wait). Returns 0, or the errno;
    /// elsewhere than Linux it does nothing and returns 0.</summary>
    public static int Start(SafeFileHandle file, long offset, long bytes)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        int fd = (int)file.DangerousGetHandle();
        return Native.sync_file_range(fd, offset, bytes, Native.Write) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Drops <paramref name="bytes"/> of <paramref name="file"/>'s cached pages from <paramref name="offset"/>
    /// (<c>posix_fadvise(POSIX_FADV_DONTNEED)</c>): the clean ones go back to the kernel's free memory; a page dirty or
    /// still being written back stays. Returns 0, or the error number; elsewhere than Linux it does nothing.</summary>
    public static int Drop(SafeFileHandle file, long offset, long bytes)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        int fd = (int)file.DangerousGetHandle();
        return Native.posix_fadvise(fd, offset, bytes, Native.DontNeed); // returns the error itself, not through errno
    }

    private static class Native
    {
        public const uint WaitBefore = 1, Write = 2, WaitAfter = 4;
        public const int DontNeed = 4;

        [DllImport("libc")]
        public static extern int posix_fadvise(int fd, long offset, long len, int advice);

        [DllImport("libc", SetLastError = true)]
        public static extern int sync_file_range(int fd, long offset, long nbytes, uint flags);
    }
}
