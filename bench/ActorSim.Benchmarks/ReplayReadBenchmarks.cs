using System.Text;
using System.Text.Json;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Simulation;
using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.Serialization;
using BenchmarkDotNet.Attributes;

namespace ActorSim.Benchmarks;

/// <summary>Writing one decision, side by side: the general System.Text.Json path against the
/// hand-written writer (the journal's and an export's path).</summary>
[MemoryDiagnoser]
public class RecordWriteBenchmarks
{
    private DecisionRecord _decision = null!;

    [GlobalSetup]
    public void Setup() => _decision = ReplayReadBenchmarks.Sample();

    [Benchmark(Baseline = true)] public byte[] Write_General() => JsonSerializer.SerializeToUtf8Bytes(_decision, DomainEventSerializer.General);
    [Benchmark] public byte[] Write_HandWritten() => JsonSerializer.SerializeToUtf8Bytes(_decision, DomainEventSerializer.Options);
}

/// <summary>Reading one decision back, side by side: the general System.Text.Json path against the
/// hand-written reader (a record alone, and a whole event-log line with its checks).</summary>
[MemoryDiagnoser]
public class ReplayReadBenchmarks
{
    private byte[] _record = [];
    private ReadOnlyMemory<byte> _line;

    /// <summary>A device-memory decision of a 6.9 kernel.</summary>
    public static DecisionRecord Sample()
    {
        var k = new SyncKernel(KernelPolicy.Of("6.9"));
        k.AddDevice(Domain.Vfio.DeviceLayout.Build("gpu0", Domain.Vfio.VfioDriver.VfioPci, 0, [new Domain.Vfio.RegionSpec(0, 1UL << 24, Domain.Vfio.BarType.Mem64, true)]));
        k.AddVm(KvmVm.Create("vm1"));
        k.MmapDevice("gpu0", 0, 0, 1UL << 24, true, Domain.Mm.Prot.Read | Domain.Mm.Prot.Write, null, out var bar);
        k.SetMemslot("vm1", 1, MemslotFlags.None, 0x80_0000_0000, 1UL << 24, bar);
        return k.Access("vm1", 0, 0x80_0000_1000, AccessOp.Read).Decision!;
    }

    [GlobalSetup]
    public void Setup()
    {
        var decision = Sample();
        _record = JsonSerializer.SerializeToUtf8Bytes(decision, DomainEventSerializer.General);
        var file = new MemoryStream();
        EventLogFile.WriteAsync(file, new EventLogHeader("b", "6.9", true, true, 64, 0, null, null, 1), [new RunEvent(1, "kvm-vm1", 1, new Stage2FaultResolved(decision), 0)]).GetAwaiter().GetResult();
        var lines = Encoding.UTF8.GetString(file.ToArray()).Split('\n');
        _line = Encoding.UTF8.GetBytes(lines[1]);
    }

    [Benchmark(Baseline = true)] public DecisionRecord? Record_General() => JsonSerializer.Deserialize<DecisionRecord>(_record, DomainEventSerializer.General);
    [Benchmark] public DecisionRecord? Record_HandWritten() => JsonSerializer.Deserialize<DecisionRecord>(_record, DomainEventSerializer.Options);

    /// <summary>The writer's template matched without a tokenizer (what replay and recovery try first).</summary>
    [Benchmark]
    public DecisionRecord? Record_Template() => DecisionRecordConverter.TryMatchWritten(_record, out var r) ? r : throw new InvalidOperationException("not matched");

    /// <summary>The line through a JsonDocument and the key checks (the path every line took before).</summary>
    [Benchmark] public RunEvent Line_Document() => EventLogFile.ParseEvent("b.jsonl", 2, _line, 1, new Dictionary<string, long>());
    [Benchmark] public RunEvent? Line_Reader() => EventLogFile.TryParseWritten(_line.Span, 1, new Dictionary<string, long>());
}
