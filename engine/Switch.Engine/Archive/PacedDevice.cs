using FASTER.core;

namespace Switch.Engine.Archive;

/// <summary>
/// A FASTER device whose large writes go through <see cref="PacedWrites"/> where <paramref name="paced"/> says so, by the
/// write's address on the device (anywhere, for a checkpoint's files; the archive's log: its fold-over). With <paramref name="queueAll"/>
/// its small writes go through the queue too, unpaced: a checkpoint's files are created and opened at their first write,
/// which FASTER makes on the thread that starts the checkpoint (the logic's, in a snapshot's pause), and a file's creation
/// waits for the file system's journal, busy with the switch's own. Everything else is the inner device's.
/// </summary>
internal sealed class PacedDevice(IDevice inner, PacedWrites writes, bool queueAll, Func<ulong, bool> paced) : IDevice
{
    public uint SectorSize => inner.SectorSize;
    public string FileName => inner.FileName;
    public long Capacity => inner.Capacity;
    public long SegmentSize => inner.SegmentSize;
    public int StartSegment => inner.StartSegment;
    public int EndSegment => inner.EndSegment;

    public int ThrottleLimit
    {
        get => inner.ThrottleLimit;
        set => inner.ThrottleLimit = value;
    }

    public void Initialize(long segmentSize, LightEpoch epoch = null!, bool omitSegmentIdFromFilename = false) =>
        inner.Initialize(segmentSize, epoch, omitSegmentIdFromFilename);

    public bool TryComplete() => inner.TryComplete();
    public bool Throttle() => inner.Throttle();

    public void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        bool pace = PacedWrites.Paces(numBytesToWrite) && paced((ulong)segmentId * (ulong)inner.SegmentSize + destinationAddress);
        if (pace || queueAll) writes.Enqueue(inner, sourceAddress, segmentId, destinationAddress, numBytesToWrite, pace, callback, context);
        else inner.WriteAsync(sourceAddress, segmentId, destinationAddress, numBytesToWrite, callback, context);
    }

    public void WriteAsync(IntPtr alignedSourceAddress, ulong alignedDestinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        bool pace = PacedWrites.Paces(numBytesToWrite) && paced(alignedDestinationAddress);
        if (pace || queueAll) writes.Enqueue(inner, alignedSourceAddress, -1, alignedDestinationAddress, numBytesToWrite, pace, callback, context);
        else inner.WriteAsync(alignedSourceAddress, alignedDestinationAddress, numBytesToWrite, callback, context);
    }

    public void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context) =>
        inner.ReadAsync(segmentId, sourceAddress, destinationAddress, readLength, callback, context);

    public void ReadAsync(ulong alignedSourceAddress, IntPtr alignedDestinationAddress, uint aligned_read_length, DeviceIOCompletionCallback callback, object context) =>
        inner.ReadAsync(alignedSourceAddress, alignedDestinationAddress, aligned_read_length, callback, context);

    public void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result) => inner.TruncateUntilAddressAsync(toAddress, callback, result);
    public void TruncateUntilAddress(long toAddress) => inner.TruncateUntilAddress(toAddress);
    public void TruncateUntilSegmentAsync(int toSegment, AsyncCallback callback, IAsyncResult result) => inner.TruncateUntilSegmentAsync(toSegment, callback, result);
    public void TruncateUntilSegment(int toSegment) => inner.TruncateUntilSegment(toSegment);
    public void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result) => inner.RemoveSegmentAsync(segment, callback, result);
    public void RemoveSegment(int segment) => inner.RemoveSegment(segment);
    public long GetFileSize(int segment) => inner.GetFileSize(segment);
    public void Reset() => inner.Reset();
    public void Dispose() => inner.Dispose();
}

/// <summary>The checkpoint manager's devices (the index's file, the log checkpoint's metadata), each a
/// <see cref="PacedDevice"/> that queues every write and paces the large.</summary>
internal sealed class PacedDeviceFactory(INamedDeviceFactory inner, PacedWrites writes) : INamedDeviceFactory
{
    public void Initialize(string baseName) => inner.Initialize(baseName);
    public IDevice Get(FileDescriptor fileInfo) => new PacedDevice(inner.Get(fileInfo), writes, queueAll: true, static _ => true);
    public void Delete(FileDescriptor fileInfo) => inner.Delete(fileInfo);
    public IEnumerable<FileDescriptor> ListContents(string path) => inner.ListContents(path);
}
