using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Switch.Journal;

/// <summary>
/// Writes a new file front to back, on Linux with <c>O_DIRECT</c> from an aligned buffer, so a large file written beside
/// the live journal (a snapshot, a retirement's archive: hundreds of MiB each) leaves no dirty pages behind it.
/// Buffered, those pages were written back in bursts (an fsync, the kernel's flusher) that filled the disk's queue and,
/// on ext4's ordered journal, joined the file-system transactions the journal's own O_SYNC group commits wait for:
/// every answer sent meanwhile waited with them. Direct, the disk sees one <see cref="BufferBytes"/> write at a time, at
/// the writer's pace (<c>wrote</c>: a budget's hook, called before each write), and a commit queues behind at most that.
/// A file system that refuses <c>O_DIRECT</c> (and other systems) gets the same bytes buffered: <see cref="Direct"/> says which.
/// <para>The bytes are written whole buffers at a time at aligned offsets; <see cref="WriteOut"/> writes a partial last
/// block padded with zeros and cuts the file back to its length, keeping that block buffered to be written again with
/// what follows. One thread; not a <see cref="Stream"/> (nothing reads or seeks it).</para>
/// </summary>
public sealed unsafe class DirectWriter : IDisposable
{
    /// <summary>One write's size: the most the disk's queue holds of a snapshot at once (a few ms behind which a commit
    /// may wait), and few enough system calls (a 500 MiB snapshot: 2,000).</summary>
    public const int BufferBytes = 256 << 10;
    private const int AlignBytes = DirectFile.AlignBytes;

    private readonly SafeFileHandle _file;
    private readonly Action<long>? _wrote;
    private byte* _buffer;
    private int _buffered;
    /// <summary>The file offset the buffer starts at: a multiple of <see cref="AlignBytes"/>.</summary>
    private long _bufferAt;

    private DirectWriter(SafeFileHandle file, bool direct, Action<long>? wrote)
    {
        _file = file;
        _wrote = wrote;
        Direct = direct;
        _buffer = (byte*)NativeMemory.AlignedAlloc(BufferBytes, AlignBytes);
    }

    /// <summary>Creates (or empties) <paramref name="path"/>, readable by others meanwhile. <paramref name="wrote"/>: told the
    /// bytes of each write before it is made, on the writing thread (a write budget waits there); null: none.</summary>
    public static DirectWriter Create(string path, Action<long>? wrote = null)
    {
        SafeFileHandle file = DirectFile.Open(path, truncate: true, sync: false, out bool direct);
        return new DirectWriter(file, direct, wrote);
    }

    /// <summary>True: written with O_DIRECT (no page cache); false: buffered.</summary>
    public bool Direct { get; }

    /// <summary>Bytes written so far (buffered ones included).</summary>
    public long Position => _bufferAt + _buffered;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int n = Math.Min(bytes.Length, BufferBytes - _buffered);
            bytes[..n].CopyTo(new Span<byte>(_buffer + _buffered, n));
            _buffered += n;
            bytes = bytes[n..];
            if (_buffered == BufferBytes)
            {
                _wrote?.Invoke(BufferBytes);
                RandomAccess.Write(_file, new ReadOnlySpan<byte>(_buffer, BufferBytes), _bufferAt);
                _bufferAt += BufferBytes;
                _buffered = 0;
            }
        }
    }

    /// <summary>Writes what is buffered: the file then holds exactly <see cref="Position"/> bytes (not yet durable).</summary>
    public void WriteOut()
    {
        int whole = _buffered & ~(AlignBytes - 1);
        int tail = _buffered - whole;
        int padded = tail == 0 ? whole : whole + AlignBytes;
        if (padded == 0) return;
        new Span<byte>(_buffer + _buffered, padded - _buffered).Clear();
        _wrote?.Invoke(padded);
        RandomAccess.Write(_file, new ReadOnlySpan<byte>(_buffer, padded), _bufferAt);
        if (tail != 0) RandomAccess.SetLength(_file, Position); // the padding is not the file's
        // The partial block stays buffered, at the start, and is written again (whole or longer) next time.
        Buffer.MemoryCopy(_buffer + whole, _buffer, BufferBytes, tail);
        _bufferAt += whole;
        _buffered = tail;
        Debug.Assert(_bufferAt % AlignBytes == 0);
    }

    /// <summary>Writes what is buffered and makes the file durable (fsync).</summary>
    public void Sync()
    {
        WriteOut();
        RandomAccess.FlushToDisk(_file);
    }

    public void Dispose()
    {
        _file.Dispose();
        if (_buffer is not null)
        {
            NativeMemory.AlignedFree(_buffer);
            _buffer = null;
        }
    }
}
