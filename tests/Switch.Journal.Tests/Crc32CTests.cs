using System.Text;

namespace Switch.Journal.Tests;

public class Crc32CTests
{
    [Fact]
    public void Known_check_value()
    {
        // The standard CRC-32C check value for "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0u, Crc32C.Compute(ReadOnlySpan<byte>.Empty));
    }

    [Fact]
    public void Hardware_and_software_paths_agree()
    {
        var random = new Random(7);
        for (int length = 0; length < 300; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            uint software = Crc32C.Finish(Crc32C.AppendSoftware(Crc32C.Start, data));
            Assert.Equal(software, Crc32C.Compute(data));
            // Running form: split anywhere, same result.
            int split = length / 3;
            uint running = Crc32C.Append(Crc32C.Start, data.AsSpan(0, split));
            Assert.Equal(software, Crc32C.Finish(Crc32C.Append(running, data.AsSpan(split))));
        }
    }
}
