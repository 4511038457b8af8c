"""The extra questions some services ask (GeoReport v2 service definitions), held as data.

Each attribute has the specification's fields; texts are given in Chinese and English and picked
by the request's locale. A category without an entry here has no attributes (metadata false).
"""
from dataclasses import dataclass, field

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: str
    order: int
    description: tuple[str, str]  # (zh, en)
    required: bool = False
    variable: bool = True  # false: information shown to the citizen, nothing to answer
    datatype_description: tuple[str, str] | None = None
    values: tuple[tuple[str, str, str], ...] = field(default=())  # (key, zh name, en name)

    def __post_init__(self):
        assert self.datatype in DATATYPES, self.datatype
        assert bool(self.values) == self.datatype.endswith("valuelist"), self.code

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.values]


def _yes_no() -> tuple[tuple[str, str, str], ...]:
    return (("yes", "是", "Yes"), ("no", "否", "No"))


ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    "0109": (  # street light
        Attribute("LIGHT_FAULT", "singlevaluelist", 1, ("路灯有什么问题？", "What is wrong with the light?"),
                  required=True, values=(("dark", "夜间不亮", "Not lit at night"),
                                         ("flicker", "闪烁", "Flickering"),
                                         ("daytime", "白天常亮", "Lit in daytime"),
                                         ("damaged", "灯杆或灯具损坏", "Pole or lamp damaged"))),
    ),
    "1004": (  # illegal parking
        Attribute("BLOCKING", "singlevaluelist", 1, ("车辆阻挡了什么？", "What does the vehicle block?"),
                  required=True, values=(("sidewalk", "人行道", "The sidewalk"),
                                         ("lane", "机动车道", "A traffic lane"),
                                         ("fire_lane", "消防通道", "A fire lane"),
                                         ("entrance", "出入口", "An entrance"))),
        Attribute("PLATE", "string", 2, ("车牌号（如能看清）", "Licence plate, if readable"),
                  datatype_description=("例如 沪A12345", "e.g. 沪A12345")),
    ),
    "1007": (  # noise nuisance
        Attribute("NOISE_SOURCE", "multivaluelist", 1, ("噪声来源（可多选）", "Where does the noise come from? (any)"),
                  required=True, values=(("construction", "施工", "Construction"),
                                         ("music", "音响、广场舞", "Music or loudspeakers"),
                                         ("shop", "商铺经营", "A shop"),
                                         ("vehicle", "车辆", "Vehicles"),
                                         ("other", "其他", "Other"))),
        Attribute("NOISE_SINCE", "datetime", 2, ("噪声从何时开始？", "Since when?"),
                  datatype_description=("ISO 8601，例如 2026-11-26T22:00:00+08:00",
                                        "ISO 8601, e.g. 2026-11-26T22:00:00+08:00")),
    ),
    "1101": (  # missing manhole cover
        Attribute("SAFETY", "string", 1, ("如有人员坠落或受伤，请立即拨打 120 / 110。",
                                          "If anyone has fallen in or is hurt, call 120 or 110 now."), variable=False),
        Attribute("MARKED", "singlevaluelist", 2, ("现场是否已设置警示或围挡？", "Is the hole marked or fenced off?"),
                  required=True, values=_yes_no()),
        Attribute("DETAILS", "text", 3, ("补充说明（位置、大小等）", "Anything else (where exactly, how big)")),
    ),
    "1103": (  # waterlogging
        Attribute("DEPTH_CM", "number", 1, ("积水深度（厘米）", "Depth of the water, in centimetres"),
                  datatype_description=("0 到 500 之间的数字", "a number from 0 to 500")),
        Attribute("TRAPPED", "singlevaluelist", 2, ("是否有车辆或人员被困？", "Is any vehicle or person trapped?"),
                  required=True, values=_yes_no()),
    ),
}

# bounds on numbers, by attribute code (a depth of water is not negative)
NUMBER_RANGES = {"DEPTH_CM": (0, 500)}


def attributes_for(service_code: str) -> tuple[Attribute, ...]:
    return ATTRIBUTES.get(service_code, ())
