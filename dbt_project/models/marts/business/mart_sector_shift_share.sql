-- Shift-share per region (sum over SNI groups) between the vars-given years: Dunn (growth = national share +
-- industry mix + regional shift; net total shift = mix + regional) and Esteban-Marquillas (competitive,
-- allocation). Reference economy var('shift_share_reference_region').
with

{{ shift_share_parts_ctes(ref('int_employment__sector_base')) }},

aggregated as (

    select
        region_code,
        region_level,
        base_year,
        end_year,
        reference_region,
        basis,
        count(*) as n_industries,
        -- ordered aggregates: a fixed summation order keeps rebuilt marts byte-identical
        sum(employed_base order by sni_group_code) as employed_base,
        sum(employed_end order by sni_group_code) as employed_end,
        sum(growth order by sni_group_code) as growth,
        sum(national_share order by sni_group_code) as national_share,
        sum(industry_mix order by sni_group_code) as industry_mix,
        sum(regional_shift order by sni_group_code) as regional_shift,
        -- Esteban-Marquillas needs every industry's growth rate: unknown when a group had no base-year employment
        case when count(em_competitive) = count(*) then sum(em_competitive order by sni_group_code) end
            as em_competitive,
        case when count(em_allocation) = count(*) then sum(em_allocation order by sni_group_code) end
            as em_allocation,
        bool_or(crosses_series_break) as crosses_series_break,
        max(source_series_base) as source_series_base,
        max(source_series_end) as source_series_end,
        bool_or(is_synthetic) as is_synthetic,
        {{ lineage_agg('lineage') }} as lineage
    from parts
    group by region_code, region_level, base_year, end_year, reference_region, basis

),

final as (

    select
        region_code,
        region_level,
        base_year,
        end_year,
        reference_region,
        basis,
        n_industries,
        cast(employed_base as bigint) as employed_base,
        cast(employed_end as bigint) as employed_end,
        cast(growth as bigint) as growth,
        {{ round_index('national_share', 4) }} as national_share,
        {{ round_index('industry_mix', 4) }} as industry_mix,
        {{ round_index('regional_shift', 4) }} as regional_shift,
        {{ round_index('industry_mix + regional_shift', 4) }} as net_total_shift,
        {{ round_index('em_competitive', 4) }} as em_competitive,
        {{ round_index('em_allocation', 4) }} as em_allocation,
        source_series_base,
        source_series_end,
        crosses_series_break,
        {{ provenance_columns('lineage') }}
    from aggregated

)

select * from final
