-- Shift-share per region x SNI group between var('shift_share_base_year') and var('shift_share_end_year'),
-- against var('shift_share_reference_region'), on var('employment_basis'): the industry parts of the Dunn and
-- Esteban-Marquillas decompositions (they sum to mart_sector_shift_share).
with

{{ shift_share_parts_ctes(ref('int_employment__sector_base')) }},

final as (

    select
        region_code,
        region_level,
        sni_group_code,
        base_year,
        end_year,
        reference_region,
        basis,
        cast(employed_base as bigint) as employed_base,
        cast(employed_end as bigint) as employed_end,
        cast(growth as bigint) as growth,
        {{ round_index('national_share', 4) }} as national_share,
        {{ round_index('industry_mix', 4) }} as industry_mix,
        {{ round_index('regional_shift', 4) }} as regional_shift,
        {{ round_index('industry_mix + regional_shift', 4) }} as net_total_shift,
        {{ round_index('em_homothetic_base', 4) }} as em_homothetic_base,
        {{ round_index('em_competitive', 4) }} as em_competitive,
        {{ round_index('em_allocation', 4) }} as em_allocation,
        source_series_base,
        source_series_end,
        crosses_series_break,
        {{ provenance_columns('lineage') }}
    from parts

)

select * from final
