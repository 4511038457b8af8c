from flask_smorest import Blueprint

blp = Blueprint("exports", __name__, description="Exports (数据导出)")
