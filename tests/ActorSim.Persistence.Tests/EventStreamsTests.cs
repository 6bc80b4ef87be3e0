using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using ActorSim.Persistence.EventLog;

namespace ActorSim.Persistence.Tests;

/// <summary>An event log's events each in their own kind of stream (EventStreams.Misplaced): replay and
/// explain fold a "kvm-VM" stream into VM VM, so a VM's event in the mm's stream, or VM vm2's in vm1's, was
/// read without a word and folded into the wrong state or none.</summary>
public class EventStreamsTests
{
    private const ulong MiB = 1UL << 20;

    /// <summary>The stream each event belongs in, from the namespace of its type (not from EventStreams).</summary>
    private static string Home(IDomainEvent e) => e.GetType().Namespace!.Split('.')[^1] switch
    {
        "Mm" => "mm-vmm",
        "Vfio" => "vfio-gpu0",
        "Kvm" => "kvm-vm1",
        "Invariants" => "invariants",
        var ns => throw new InvalidOperationException(ns),
    };

    [Fact]
    public void Each_event_is_taken_in_its_own_kind_of_stream_and_in_a_foreign_one_and_refused_in_the_others()
    {
        string[] kinds = ["mm-vmm", "vfio-gpu0", "kvm-vm1", "invariants"];
        foreach (var e in EventSerializationTests.SampleEvents())
        {
            Assert.Null(EventStreams.Misplaced(Home(e), e));
            Assert.Null(EventStreams.Misplaced("s0", e)); // a journal written by other code
            foreach (var other in kinds.Where(k => k != Home(e)))
                Assert.Equal("stream", EventStreams.Misplaced(other, e)?.Field);
        }
    }

    /// <summary>A run's log as file lines: the mm's, a device's and a VM's events, and the VM's two faults also
    /// as one batch, as the batched fault path writes them.</summary>
    private static string[] Log()
    {
        var k = new SyncKernel(KernelPolicy.Of("6.9"));
        k.AddDevice(DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * MiB, BarType.Mem64, true)]));
        k.AddVm(KvmVm.Create("vm1"));
        Assert.Equal(Errno.None, k.MmapRam(2 * MiB, null, out var ram));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 0, MemslotFlags.None, 0x4000_0000, 2 * MiB, ram));
        k.Access("vm1", 0, 0x4000_0000, AccessOp.Read);
        k.Access("vm1", 1, 0x4000_1000, AccessOp.Read);
        k.SetDeviceMemory("gpu0", false);
        var log = k.Log.Select(e => (e.Stream, e.Event)).ToList();
        var faults = log.Where(x => x.Event is Stage2FaultResolved).ToList();
        Assert.Equal(2, faults.Count);
        log.Insert(log.IndexOf(faults[^1]) + 1, ("kvm-vm1", new Stage2FaultsResolved([.. faults.Select(f => ((Stage2FaultResolved)f.Event).Decision)])));
        var versions = new Dictionary<string, long>();
        var events = log.Select((x, i) => new RunEvent(i + 1, x.Stream, versions[x.Stream] = versions.GetValueOrDefault(x.Stream) + 1, x.Event, 0)).ToList();
        var ms = new MemoryStream();
        EventLogFile.WriteAsync(ms, new EventLogHeader("streams", "6.9", true, true, 64, 7, null, null, events.Count), events).GetAwaiter().GetResult();
        return System.Text.Encoding.UTF8.GetString(ms.ToArray()).Split('\n');
    }

    private static void Read(string[] lines)
    {
        var path = Path.Combine(Path.GetTempPath(), $"streams-{Guid.NewGuid():N}.jsonl");
        File.WriteAllText(path, string.Join('\n', lines));
        try { EventLogFile.Read(path); }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("memslot_set", "\"vm\":\"vm1\"", "\"vm\":\"vm2\"", "data.vm")]
    [InlineData("stage2_fault_resolved", "\"vm\":\"vm1\"", "\"vm\":\"vm2\"", "data.decision.inputs.vm")]
    [InlineData("stage2_faults_resolved", "\"vm\":\"vm1\",\"vcpu\":1", "\"vm\":\"vm2\",\"vcpu\":1", "data.decisions[1].inputs.vm")]
    [InlineData("vfio_memory_toggled", "\"device\":\"gpu0\"", "\"device\":\"nic0\"", "data.device")]
    [InlineData("memslot_set", "\"stream\":\"kvm-vm1\"", "\"stream\":\"mm-vm1\"", "stream")]
    [InlineData("vma_mapped", "\"stream\":\"mm-vmm\"", "\"stream\":\"kvm-vmm\"", "stream")]
    public void An_event_in_another_VMs_or_devices_or_kinds_stream_is_refused_at_its_line(string type, string from, string to, string field)
    {
        var lines = Log();
        Read(lines);
        var at = Array.FindIndex(lines, l => l.Contains($"\"type\":\"{type}\""));
        Assert.Contains(from, lines[at]);
        lines[at] = lines[at].Replace(from, to);
        var e = Assert.Throws<EventLogFormatException>(() => Read(lines));
        Assert.Equal((at + 1, field), (e.Line, e.Field));
    }
}
