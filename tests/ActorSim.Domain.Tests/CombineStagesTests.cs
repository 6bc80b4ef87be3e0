using ActorSim.Domain.Kernel;
using ActorSim.Domain.Stage2;

namespace ActorSim.Domain.Tests;

/// <summary>kernel-model.md §5.2: all 42 cells (7 stage-1 types × 6 stage-2 columns), following the
/// Arm architecture where QEMU differs.</summary>
public class CombineStagesTests
{
    private static readonly (string Column, byte Code, bool Fwb)[] Columns =
    [
        ("S2 Dev-nGnRE, no FWB", 0x1, false),
        ("S2 Dev-nGnRE, FWB", 1, true),
        ("S2 Normal-NC, no FWB", 0x5, false),
        ("S2 Normal-NC, FWB", 5, true),
        ("S2 Normal-WB, no FWB", 0xF, false),
        ("S2 Normal-WB, FWB", 6, true),
    ];

    // Rows of the table: stage-1 type, then the effective type in each column, left to right.
    private static readonly string[][] Table =
    [
        ["Device-nGnRnE", "Device-nGnRnE", "Device-nGnRnE", "Device-nGnRnE", "Device-nGnRnE", "Device-nGnRnE", "Normal-WB"],
        ["Device-nGnRE", "Device-nGnRE", "Device-nGnRE", "Device-nGnRE", "Device-nGnRE", "Device-nGnRE", "Normal-WB"],
        ["Device-nGRE", "Device-nGnRE", "Device-nGnRE", "Device-nGRE", "Device-nGRE", "Device-nGRE", "Normal-WB"],
        ["Device-GRE", "Device-nGnRE", "Device-nGnRE", "Device-GRE", "Device-GRE", "Device-GRE", "Normal-WB"],
        ["Normal-NC", "Device-nGnRE", "Device-nGnRE", "Normal-NC", "Normal-NC", "Normal-NC", "Normal-WB"],
        ["Normal-WT", "Device-nGnRE", "Device-nGnRE", "Normal-NC", "Normal-NC", "Normal-WT", "Normal-WB"],
        ["Normal-WB", "Device-nGnRE", "Device-nGnRE", "Normal-NC", "Normal-NC", "Normal-WB", "Normal-WB"],
    ];

    public static TheoryData<string, string, string> Cells()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var row in Table)
            for (var c = 0; c < Columns.Length; c++)
                data.Add(row[0], Columns[c].Column, row[c + 1]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void Stage1_combined_with_stage2_gives_the_tables_type(string s1, string column, string effective)
    {
        var (_, code, fwb) = Columns.Single(c => c.Column == column);
        Assert.True(MemTypeNames.TryParse(s1, out var s1Type));
        Assert.Equal(effective, CombineStages.Combine(s1Type, code, fwb).Name());
    }

    [Fact]
    public void The_table_has_42_cells() => Assert.Equal(42, Cells().Count());

    [Fact]
    public void FWB_code_0b111_leaves_stage1_unchanged_and_0b100_is_reserved()
    {
        foreach (var s1 in MemTypeNames.All) Assert.Equal(s1, CombineStages.Combine(s1, 0b111, true));
        Assert.False(CombineStages.TryCombine(MemType.NormalWB, 0b100, true, out _));
    }
}
